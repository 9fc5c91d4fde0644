"""AcceptorSlots, the supervisor's bookkeeping of acceptor slots: restart
back-off, and a roll from one set of slots to the other."""
from mpgearman.slots import AcceptorSlots, MAX_SLOTS


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_crash_loop_backs_off_and_a_long_life_restarts_at_once():
    clock = Clock()
    s = AcceptorSlots(2, clock)
    s.started(0, 100)
    clock.now += 1
    assert not s.exited(0)
    assert s.reset(0, gen=1)
    assert s.due() == ([], 0.5)
    clock.now += 0.5
    assert s.due() == ([0], 1.0)
    s.started(0, 101)
    s.exited(0)
    s.reset(0, gen=2)
    assert s.due()[1] == 1.0 and s.backoff[0] == 1.0
    clock.now += 1
    assert s.due()[0] == [0] and s.gens[0] == 2
    s.started(0, 102)
    clock.now += 60
    s.exited(0)
    s.reset(0, gen=3)
    assert s.due() == ([0], 1.0)


def test_a_roll_starts_the_spare_half_and_retires_the_old_one():
    s = AcceptorSlots(2, Clock())
    assert s.count == 4 and s.active == [0, 1]
    for i, pid in ((0, 10), (1, 11)):
        s.started(i, pid)
        assert not s.now_ready(i)
    assert s.all_ready() and s.up() == 2 and not s.rolling
    assert s.begin_roll() == [2, 3]
    s.started(2, 12)
    s.started(3, 13)
    assert not s.now_ready(2)
    assert s.now_ready(3)                   # the last of the new set: roll complete
    old, stop = s.finish_roll()
    assert old == [0, 1] and sorted(stop) == [10, 11]
    assert s.active == [2, 3] and s.up() == 2 and s.rolling
    assert s.exited(0) and s.exited(1)      # retired, not to be restarted
    assert not s.reset(0, gen=1) and not s.reset(1, gen=1)
    assert not s.rolling and s.due() == ([], 1.0)
    assert s.begin_roll() == [0, 1] and s.gens[0] == 1


def test_a_dead_acceptor_of_the_old_set_is_not_restarted_after_the_roll():
    s = AcceptorSlots(1, Clock())
    s.started(0, 10)
    s.now_ready(0)
    s.exited(0)                              # died; its rings not yet cleared
    s.begin_roll()
    s.started(1, 11)
    assert s.now_ready(1)
    old, stop = s.finish_roll()
    assert stop == []
    assert not s.reset(0, gen=1)            # cleared now: free, no restart
    assert s.due() == ([], 1.0) and not s.rolling


def test_too_many_acceptors_for_spare_slots():
    s = AcceptorSlots(MAX_SLOTS // 2 + 1)
    assert s.count == s.n and s.begin_roll() == []


def test_a_roll_that_never_gets_ready_is_abandoned():
    clock = Clock()
    s = AcceptorSlots(2, clock)
    for i, pid in ((0, 10), (1, 11)):
        s.started(i, pid)
        s.now_ready(i)
    s.begin_roll()
    s.started(2, 12)
    s.started(3, 13)
    s.now_ready(2)
    s.exited(3)                              # crashed, its rings not yet cleared
    assert not s.roll_overdue(30)
    clock.now += 31
    assert s.roll_overdue(30)
    assert s.abort_roll() == [12]
    assert s.active == [0, 1] and s.up() == 2 and not s.roll_overdue(30)
    assert s.exited(2)
    assert not s.reset(2, gen=1) and not s.reset(3, gen=1)
    assert not s.rolling and s.due() == ([], 1.0)
