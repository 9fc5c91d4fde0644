"""Queue latency in the Core: when each job was queued and assigned, the
wait (queued -> assigned) and run (assigned -> ended) histograms per
function, the oldest queued job, and busy/idle workers; and that the
counters mapping shows them as the Core holds them."""
import pytest

from corekit import T0, T, Harness
from mpgearman.coordinator.figures import Figures
from mpgearman.coordinator.queues import BOUNDS, HIST_LEN
from mpgearman.ipc.counters import Counters, histogram


@pytest.fixture
def pub():
    h = Harness()
    counters = Counters.create(acceptors=1, slots=3)
    figures = Figures(counters)

    def publish():
        figures.publish(h.core.functions.dirty)
        return {name.decode(): f for name, f in counters.functions()}

    h.publish, h.figures = publish, figures
    yield h
    counters.close()


def hist(*times):
    """The histogram list the Core keeps for these times."""
    out = [0] * HIST_LEN
    for t in times:
        out[next((i for i, b in enumerate(BOUNDS) if t <= b), len(BOUNDS))] += 1
        out[-1] += t
    return out


def test_wait_and_run_times_go_to_their_buckets(pub):
    h = pub
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
    h.clock.advance(0.25)
    handle = h.grab_handle(w)
    h.clock.advance(3)
    h.send(w, T.WORK_COMPLETE, handle, b"ok")
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
    h.clock.advance(45)
    handle = h.grab_handle(w)
    h.send(w, T.WORK_FAIL, handle)          # ran 0 s
    fn = h.core.functions.by_name[b"f"]
    assert fn.waits == pytest.approx(hist(0.25, 45))
    assert fn.runs == pytest.approx(hist(3, 0))
    shown = h.publish()["f"]
    counts, total = histogram(shown, "wait")
    assert counts == hist(0.25, 45)[:-1] and total == pytest.approx(45.25)
    counts, total = histogram(shown, "run")
    assert counts == hist(3, 0)[:-1] and total == pytest.approx(3)


def test_a_requeued_job_waits_again_from_its_requeue(pub):
    h = pub
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
    h.clock.advance(2)
    h.grab_handle(w)
    h.clock.advance(7)
    h.core.disconnect(w)                    # requeued at T0 + 9, no run recorded
    fn = h.core.functions.by_name[b"f"]
    assert fn.oldest() == T0 + 9 and fn.runs == hist()
    h.clock.advance(0.5)
    h.grab_handle(h.worker(b"f"))
    assert fn.waits == pytest.approx(hist(2, 0.5))


def test_oldest_queued_is_the_longest_waiting_head_of_any_priority(pub):
    h = pub
    c, w = h.conn(), h.worker(b"f")
    fn = h.core.functions.get(b"f")
    assert fn.oldest() == 0 and h.publish()["f"]["oldest_queued_us"] == 0
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_LOW_BG)
    h.clock.advance(1)
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_HIGH_BG)
    h.clock.advance(1)
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
    assert h.publish()["f"]["oldest_queued_us"] == T0 * 10**6
    h.grab_handle(w)                        # the high one: the low one is still oldest
    assert h.publish()["f"]["oldest_queued_us"] == T0 * 10**6
    h.grab_handle(w)                        # normal
    h.grab_handle(w)                        # low: nothing queued
    assert h.publish()["f"]["oldest_queued_us"] == 0


def test_an_epoch_job_is_queued_from_when_it_is_due(pub):
    h = pub
    c = h.conn()
    h.send(c, T.SUBMIT_JOB_EPOCH, b"f", b"", b"%d" % (T0 + 60), b"x")
    assert h.core.functions.by_name[b"f"].oldest() == 0
    h.clock.advance(61)
    h.tick()
    assert h.publish()["f"]["oldest_queued_us"] == (T0 + 61) * 10**6


def test_busy_and_idle_workers_are_counted_per_function(pub):
    h = pub
    c = h.conn()
    a, b = h.worker(b"f", b"g"), h.worker(b"f")
    h.submit(c, b"g", ptype=T.SUBMIT_JOB_BG)
    handle = h.grab_handle(a)
    h.publish()             # only functions with a slot of their own are counted
    h.figures.count_workers(h.core.conns.values(), h.core.functions.dirty)
    shown = h.publish()
    assert (shown["f"]["busy"], shown["f"]["idle"]) == (1, 1)
    assert (shown["g"]["busy"], shown["g"]["idle"]) == (1, 0)
    h.send(a, T.WORK_COMPLETE, handle, b"")
    h.core.disconnect(b)
    h.figures.count_workers(h.core.conns.values(), h.core.functions.dirty)
    shown = h.publish()
    assert (shown["f"]["busy"], shown["f"]["idle"]) == (0, 1)
    h.core.disconnect(a)
    h.figures.count_workers(h.core.conns.values(), h.core.functions.dirty)
    shown = h.publish()
    assert (shown["f"]["busy"], shown["f"]["idle"], shown["g"]["idle"]) == (0, 0, 0)


def test_the_bucket_sums_histograms_but_has_no_oldest_time():
    h = Harness()
    counters = Counters.create(acceptors=1, slots=2)     # the bucket and one slot
    figures = Figures(counters)
    c, w = h.conn(), h.worker(b"own", b"x", b"y")
    for name in (b"own", b"x", b"y"):
        h.submit(c, name, ptype=T.SUBMIT_JOB_BG)
    h.clock.advance(2)
    for _ in range(2):      # y then x (newest registration first)
        h.send(w, T.WORK_COMPLETE, h.grab_handle(w), b"")
    h.submit(c, b"x", ptype=T.SUBMIT_JOB_BG)
    figures.publish(h.core.functions.dirty)
    bucket = dict(counters.functions())[b"__other__"]
    assert bucket["oldest_queued_us"] == 0
    assert histogram(bucket, "wait") == (hist(2, 2)[:-1], pytest.approx(4))
    assert histogram(bucket, "run") == (hist(0, 0)[:-1], 0)
    counters.close()


def test_a_function_dropped_and_created_again_keeps_its_histograms(pub):
    h = pub
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
    h.clock.advance(0.02)
    h.send(w, T.WORK_COMPLETE, h.grab_handle(w), b"")
    h.publish()
    h.core.disconnect(w)
    assert h.admin(c, b"drop function f") == b"OK\r\n"
    w = h.worker(b"f")
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
    h.send(w, T.WORK_COMPLETE, h.grab_handle(w), b"")
    assert histogram(h.publish()["f"], "wait") == (hist(0.02, 0)[:-1], pytest.approx(0.02))


def test_a_clock_set_back_counts_as_no_wait(pub):
    h = pub
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
    h.clock.advance(-5)
    h.grab_handle(w)
    assert h.core.functions.by_name[b"f"].waits == hist(0)


def test_busy_and_idle_go_to_slotted_functions_only(pub, monkeypatch):
    """A worker of thousands of functions going busy changes the figures
    of at most the table's functions; the bucket shows no busy or idle."""
    h = pub
    c, w = h.conn(), h.conn()
    for i in range(3000):
        h.send(w, T.CAN_DO, b"many-%d" % i)
    h.publish()
    h.submit(c, b"many-2999", ptype=T.SUBMIT_JOB_BG)
    h.grab_handle(w)
    h.publish()
    h.figures.count_workers(h.core.conns.values(), h.core.functions.dirty)
    assert len(h.core.functions.dirty) == 2       # the two slots of the table
    shown = h.publish()
    assert (shown["many-0"]["busy"], shown["many-1"]["busy"]) == (1, 1)
    assert (shown["__other__"]["busy"], shown["__other__"]["idle"]) == (0, 0)
