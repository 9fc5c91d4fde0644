"""PRE_SLEEP / NOOP / GRAB contract (PROTOCOL.md 3.7), --worker-wakeup."""
from corekit import T

NOOP = b"\x00RES\x00\x00\x00\x06\x00\x00\x00\x00"


def noop_targets(acts):
    return [a.conn for a in acts if getattr(a, "data", None) == NOOP]


def test_pre_sleep_with_pending_work_answers_noop_at_once(h):
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f")
    assert [a.data for a in h.send(w, T.PRE_SLEEP)] == [NOOP]
    assert not h.core.conns[w].sleeping


def test_pre_sleep_with_nothing_to_do_says_nothing(h):
    w = h.worker(b"f")
    assert h.send(w, T.PRE_SLEEP) == []
    assert h.core.conns[w].sleeping


def test_one_noop_per_sleep_cycle(h):
    c, w = h.conn(), h.worker(b"f", b"g", sleep=True)
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"1")) == [w]
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"2")) == []
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"g", b"", b"3")) == []
    # the flags are cleared by the next grab
    h.grab(w)
    h.grab(w)
    h.grab(w)
    assert h.grab(w) == (T.NO_JOB, b"")
    assert h.send(w, T.PRE_SLEEP) == []
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"g", b"", b"4")) == [w]


def test_noop_sent_flag_survives_pre_sleep_until_grab(h):
    """gearmand: a worker that got its NOOP and sleeps again without grabbing
    is not woken again."""
    c, w = h.conn(), h.worker(b"f", sleep=True)
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"1")) == [w]
    other = h.worker(b"f")
    assert h.grab_handle(other) == b"H:vm:1"
    assert h.send(w, T.PRE_SLEEP) == []
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"2")) == []
    assert h.grab_handle(w) == b"H:vm:2"
    assert h.grab_handle(w) is None
    assert h.send(w, T.PRE_SLEEP) == []
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"3")) == [w]


def test_awake_workers_get_no_noop(h):
    c = h.conn()
    busy = h.worker(b"f")                 # never sent PRE_SLEEP
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"1")) == []
    h.grab(busy)


def test_can_do_never_noops_but_joins_the_sleepers(h):
    c, w = h.conn(), h.worker(b"f", sleep=True)
    h.submit(c, b"g")
    assert h.send(w, T.CAN_DO, b"g") == []
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"g", b"", b"2")) == [w]


def test_cant_do_stops_noops(h):
    c, w = h.conn(), h.worker(b"f", sleep=True)
    h.send(w, T.CANT_DO, b"f")
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"1")) == []


def test_dead_worker_not_woken(h):
    c, w = h.conn(), h.worker(b"f", sleep=True)
    h.core.disconnect(w)
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"1")) == []


def test_default_wakes_every_sleeper(h):
    c = h.conn()
    ws = [h.worker(b"f", sleep=True) for _ in range(5)]
    other = h.worker(b"g", sleep=True)
    assert sorted(noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"1"))) == ws
    assert other not in h.core.functions.by_name[b"f"].sleepers


def test_worker_wakeup_rotates(make):
    h = make(worker_wakeup=1)
    c = h.conn()
    w1, w2, w3 = (h.worker(b"f", sleep=True) for _ in range(3))
    woken = [noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"%d" % i)) for i in range(4)]
    assert woken == [[w1], [w2], [w3], []]


def test_worker_wakeup_two_and_resleep_goes_to_the_back(make):
    h = make(worker_wakeup=2)
    c = h.conn()
    w1, w2, w3 = (h.worker(b"f", sleep=True) for _ in range(3))
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"a")) == [w1, w2]
    h.grab(w1)
    assert h.grab(w1) == (T.NO_JOB, b"")
    h.send(w1, T.PRE_SLEEP)
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"b")) == [w3, w1]


def test_requeue_wakes_sleepers(h):
    c, w, sleeper = h.conn(), h.worker(b"f"), h.worker(b"f")
    h.submit(c, b"f")
    h.grab(w)
    h.send(sleeper, T.PRE_SLEEP)
    h.core.disconnect(w)
    assert noop_targets(h.take()) == [sleeper]


def test_abandoned_job_reaped_by_pre_sleep_without_noop(h):
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f")
    h.core.disconnect(c)
    assert h.admin(w, b"status") == b"f\t1\t0\t1\n.\n"
    assert h.send(w, T.PRE_SLEEP) == []
    assert h.admin(w, b"status") == b"f\t0\t0\t1\n.\n"
    assert h.core.conns[w].sleeping


def test_pre_sleep_looks_at_all_functions(h):
    c = h.conn()
    w = h.worker(b"a", b"b", b"c", b"d", b"e", b"f")
    h.submit(c, b"a", ptype=T.SUBMIT_JOB_LOW)
    assert [a.data for a in h.send(w, T.PRE_SLEEP)] == [NOOP]


def test_many_sleepers_cost_no_more_after_the_first_wake(h):
    c = h.conn()
    ws = [h.worker(b"f", sleep=True) for _ in range(200)]
    assert len(noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"1"))) == 200
    assert len(h.core.functions.by_name[b"f"].sleepers) == 0
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f", b"", b"2")) == []
    assert all(h.core.conns[w].noop_sent for w in ws)


def test_sleeper_lists_stay_bounded(h):
    c = h.conn()
    w = h.worker(b"f", b"g", b"h")
    for i in range(50):
        h.send(w, T.PRE_SLEEP)
        h.submit(c, b"f", data=b"%d" % i)
        assert h.grab_handle(w) is not None
        assert h.grab_handle(w) is None
    for name in (b"f", b"g", b"h"):
        assert len(h.core.functions.by_name[name].sleepers) <= 1


def broad_worker(h, n=40):
    return h.worker(*[b"f%d" % i for i in range(n)], sleep=True)


def test_worker_with_many_functions_sleeps_on_one_list(h):
    c = h.conn()
    w = broad_worker(h)
    assert all(not fn.sleepers for fn in h.core.functions.by_name.values())
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"other", b"", b"x")) == []
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f39", b"", b"x")) == [w]
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f0", b"", b"x")) == []     # one per cycle
    assert h.grab_handle(w) == b"H:vm:2"
    assert h.grab_handle(w) == b"H:vm:3"
    assert h.send(w, T.PRE_SLEEP) == []
    h.send(w, T.CANT_DO, b"f5")
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f5", b"", b"x")) == []
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f6", b"", b"x")) == [w]


def test_broad_and_plain_sleepers_share_worker_wakeup(make):
    h = make(worker_wakeup=1)
    c = h.conn()
    small = h.worker(b"f1", sleep=True)
    big = broad_worker(h)
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f1", b"", b"1")) == [small]
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f1", b"", b"2")) == [big]
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f1", b"", b"3")) == []


def test_broad_sleeper_that_left_or_grabbed_is_dropped(h):
    c = h.conn()
    gone, awake = broad_worker(h), broad_worker(h)
    h.core.disconnect(gone)
    h.grab(awake)
    assert noop_targets(h.send(c, T.SUBMIT_JOB, b"f1", b"", b"1")) == []
    assert not h.core.registry.broad
