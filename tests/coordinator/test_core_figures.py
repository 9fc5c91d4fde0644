"""Per-function figures for monitoring: the Core counts jobs on its paths,
marks what changed, and coordinator/figures.py publishes exactly that into
the counters mapping. After every step the published slots must equal what
the Core holds, and the `stats` admin command must add up the same."""
import pytest

from corekit import T, Harness
from mpgearman.coordinator.figures import Figures, values
from mpgearman.ipc.counters import FUNCTION_FIELDS, OVERFLOW_NAME, Counters

# The job and worker figures; the latency ones have tests of their own
# (test_core_latency.py); consistent() checks all of them against the Core.
BASIC = FUNCTION_FIELDS[:12]


class Published:
    """A Core harness with a counters mapping, published after each step."""

    def __init__(self, slots=16, **options):
        self.h = Harness(**options)
        self.counters = Counters.create(acceptors=1, slots=slots)
        self.figures = Figures(self.counters)

    def publish(self, full=False) -> dict:
        self.figures.publish(self.h.core.functions.dirty)
        assert not self.h.core.functions.dirty
        return {name.decode(): f if full else {k: f[k] for k in BASIC}
                for name, f in self.counters.functions()}

    def consistent(self) -> dict:
        """Publish and check every function the Core knows against its slot."""
        full = self.publish(full=True)
        shown = {name: {k: f[k] for k in BASIC} for name, f in full.items()}
        for fn in self.h.core.functions.by_name.values():
            if fn.slot != 0:
                assert full[fn.name.decode()] == dict(zip(FUNCTION_FIELDS, values(fn))), fn
        return shown


@pytest.fixture
def p():
    pub = Published()
    yield pub
    pub.counters.close()


def fields(**given):
    out = dict.fromkeys(BASIC, 0)
    out.update(given)
    return out


def test_a_job_life_is_counted_and_published(p):
    h = p.h
    c, w = h.conn(), h.worker(b"f")
    assert p.consistent()["f"] == fields(workers=1)
    for prio in (T.SUBMIT_JOB_HIGH_BG, T.SUBMIT_JOB_BG, T.SUBMIT_JOB_LOW_BG, T.SUBMIT_JOB):
        h.submit(c, b"f", ptype=prio)
    assert p.consistent()["f"] == fields(submitted=4, queued_high=1, queued_normal=2,
                                         queued_low=1, workers=1)
    handles = [h.grab_handle(w) for _ in range(4)]
    assert p.consistent()["f"] == fields(submitted=4, running=4, workers=1)
    h.send(w, T.WORK_COMPLETE, handles[0], b"ok")
    h.send(w, T.WORK_FAIL, handles[1])
    h.send(w, T.WORK_EXCEPTION, handles[2], b"boom")
    assert p.consistent()["f"] == fields(submitted=4, completed=1, failed=1, exceptions=1,
                                         running=1, workers=1)
    h.core.disconnect(w)          # the worker is lost mid-job: its low job is requeued
    assert p.consistent()["f"] == fields(submitted=4, completed=1, failed=1, exceptions=1,
                                         requeued=1, queued_low=1)


def test_out_of_retries_is_a_failure_not_a_requeue(make):
    pub = Published(job_retries=1)
    h = pub.h
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f")
    h.grab(w)
    h.core.disconnect(w)
    assert pub.consistent()["f"] == fields(submitted=1, failed=1)
    pub.counters.close()


def test_coalesced_and_refused_submissions_create_no_job(p):
    h = p.h
    c = h.conn()
    h.submit(c, b"f", unique=b"u", ptype=T.SUBMIT_JOB_BG)
    h.submit(c, b"f", unique=b"u", ptype=T.SUBMIT_JOB_BG)
    assert h.admin(c, b"maxqueue f 1") == b"OK\r\n"
    h.send(c, T.SUBMIT_JOB_BG, b"f", b"other", b"x")      # QUEUE_FULL
    assert p.consistent()["f"]["submitted"] == 1


def test_epoch_jobs_count_as_queued_normal_and_wake_on_time(p):
    h = p.h
    c = h.conn()
    h.send(c, T.SUBMIT_JOB_EPOCH, b"f", b"", b"%d" % (h.clock() + 60), b"x")
    assert p.consistent()["f"] == fields(submitted=1, queued_normal=1)
    h.clock.advance(61)
    h.tick()
    assert p.consistent()["f"] == fields(submitted=1, queued_normal=1)


def test_registrations_and_admin_changes_are_published(p):
    h = p.h
    c, w = h.conn(), h.conn()
    h.send(w, T.CAN_DO, b"a")
    h.send(w, T.CAN_DO, b"b")
    h.send(w, T.CAN_DO, b"b")
    assert (p.consistent()["a"]["workers"], p.consistent()["b"]["workers"]) == (1, 2)
    h.send(w, T.CANT_DO, b"b")
    assert p.consistent()["b"]["workers"] == 0
    h.send(w, T.RESET_ABILITIES)
    assert p.consistent()["a"]["workers"] == 0
    assert h.admin(c, b"create function made") == b"OK\r\n"
    assert p.consistent()["made"] == fields()


def test_a_dropped_function_keeps_its_slot_and_its_counters_grow(p):
    h = p.h
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
    h.send(w, T.WORK_COMPLETE, h.grab_handle(w), b"")
    h.core.disconnect(w)
    assert h.admin(c, b"drop function f") == b"OK\r\n"
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
    shown = p.consistent()
    assert shown["f"] == fields(submitted=2, completed=1, queued_normal=1)
    assert [n for n in shown] == ["__other__", "f"]


def test_functions_beyond_the_table_share_the_overflow_bucket(caplog):
    pub = Published(slots=3)            # the bucket and two functions
    h = pub.h
    c = h.conn()
    for name in (b"a", b"b", b"c", b"d", b"d"):
        h.submit(c, name, ptype=T.SUBMIT_JOB_BG)
    shown = pub.consistent()
    assert list(shown) == ["__other__", "a", "b"]
    assert shown["__other__"] == fields(submitted=3, queued_normal=3)
    assert pub.counters.overflowed() == 2
    assert sum("counted in the '__other__' bucket" in r.getMessage()
               for r in caplog.records) == 1
    w = h.worker(b"c")
    h.send(w, T.WORK_COMPLETE, h.grab_handle(w), b"")
    assert pub.consistent()["__other__"] == fields(submitted=3, completed=1, queued_normal=2,
                                                   workers=1)
    pub.counters.close()


def test_stats_admin_command_adds_up(p):
    h = p.h
    c, w = h.conn(), h.worker(b"f", b"g")
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
    h.submit(c, b"g", ptype=T.SUBMIT_JOB_HIGH_BG)
    h.send(w, T.WORK_FAIL, h.grab_handle(w))
    h.clock.advance(12.5)
    reply = h.admin(c, b"stats")
    assert reply.endswith(b"\n.\n")
    lines = reply.decode().splitlines()[:-1]
    stats = dict(line.split(" ", 1) for line in lines[:-2])
    assert stats == {"version": "1.1.20+ds", "uptime": "12.500", "functions": "2",
                     "jobs": "1", "jobs_submitted": "2", "jobs_completed": "0",
                     "jobs_failed": "1", "jobs_exceptions": "0", "jobs_requeued": "0",
                     "jobs_queued": "1", "jobs_running": "0", "workers": "2",
                     "connections": "2", "worker_connections": "1",
                     "latency_buckets": "0.001,0.005,0.01,0.05,0.1,0.5,1.0,5.0,10.0,"
                                        "30.0,60.0,300.0,900.0,3600.0"}
    # queued high, normal, low, running, workers, busy, idle, epoch waiting,
    # oldest age, wait and run histograms: g's job waited and ran 0 s
    zero, none = "1" + ",0" * 14 + ",0.000000", "0"
    assert lines[-2:] == [f"function\tf\t0\t1\t0\t0\t1\t0\t1\t0\t12.500\t{none}\t{none}",
                          f"function\tg\t0\t0\t0\t0\t1\t0\t1\t0\t-\t{zero}\t{zero}"]
    h.core.extra_stats = lambda: [("process.coordinator.0.pid", 42)]
    assert b"\nprocess.coordinator.0.pid 42\nfunction\tf\t" in h.admin(c, b"STATS extra words")


def test_overflow_name_is_never_a_slot_of_its_own(p):
    h = p.h
    h.submit(h.conn(), OVERFLOW_NAME, ptype=T.SUBMIT_JOB_BG)
    shown = p.consistent()
    assert list(shown) == ["__other__"] and shown["__other__"]["submitted"] == 1


def test_publishing_costs_what_changed_not_what_is_in_the_bucket(monkeypatch):
    """After one connection registers thousands of functions beyond the
    table, a change to one of them reads that function alone: the bucket
    keeps running sums instead of adding up every function it holds."""
    from mpgearman.coordinator import figures
    pub = Published(slots=3)
    h = pub.h
    flood = h.conn()
    for i in range(5000):
        h.send(flood, T.CAN_DO, b"many-%d" % i)
    assert pub.consistent()["__other__"]["workers"] == 4998
    calls = []
    real = figures.values
    monkeypatch.setattr(figures, "values", lambda fn, **kw: calls.append(fn) or real(fn, **kw))
    c, w = h.conn(), h.worker(b"late")
    h.submit(c, b"late", ptype=T.SUBMIT_JOB_BG)
    h.send(w, T.WORK_COMPLETE, h.grab_handle(w), b"")
    h.submit(c, b"many-7", ptype=T.SUBMIT_JOB_BG)
    shown = pub.publish()
    assert len(calls) == 2
    assert shown["__other__"] == fields(submitted=2, completed=1, queued_normal=1,
                                        workers=4999)
    # what the flood's functions remember of their figures is one shared tuple
    remembered = {id(fn.shown) for fn in h.core.functions.by_name.values()
                  if fn.name.startswith(b"many-") and fn.name != b"many-7"}
    assert len(remembered) == 2             # two functions have their own slots
    h.core.disconnect(flood)
    shown = pub.publish()
    assert shown["__other__"] == fields(submitted=2, completed=1, queued_normal=1, workers=1)
    pub.counters.close()


class NoWalk(dict):
    def values(self):
        raise AssertionError("walked every function")

    __iter__ = items = values


def test_heartbeat_counts_do_not_walk_the_functions():
    """The supervisor hears (connections, queued jobs, workers) twice a
    second; with many functions that must not cost a walk over them."""
    h = Harness()
    flood, c = h.conn(), h.conn()
    for i in range(100):
        h.send(flood, T.CAN_DO, b"many-%d" % i)
    w = h.worker(b"f")
    for _ in range(3):
        h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
    h.send(c, T.SUBMIT_JOB_EPOCH, b"later", b"", b"%d" % (h.clock() + 60), b"x")
    h.submit(c, b"gone", ptype=T.SUBMIT_JOB)
    h.grab_handle(w)
    h.core.disconnect(c)              # its foreground job is abandoned, still queued
    from mpgearman.coordinator.main import counts
    assert counts(h.core) == (2, 4, 2)
    h.core.functions.by_name = NoWalk(h.core.functions.by_name)
    assert counts(h.core) == (2, 4, 2)


def test_a_bucket_function_dropped_and_created_again_never_takes_back(caplog):
    pub = Published(slots=2)            # the bucket and one function
    h = pub.h
    c = h.conn()
    h.submit(c, b"own", ptype=T.SUBMIT_JOB_BG)
    h.submit(c, b"b", ptype=T.SUBMIT_JOB_BG)
    w = h.worker(b"b")
    h.send(w, T.WORK_COMPLETE, h.grab_handle(w), b"")
    assert pub.consistent()["__other__"] == fields(submitted=1, completed=1, workers=1)
    h.core.disconnect(w)
    assert h.admin(c, b"drop function b") == b"OK\r\n"
    assert pub.consistent()["__other__"] == fields(submitted=1, completed=1)
    h.submit(c, b"b", ptype=T.SUBMIT_JOB_BG)
    assert pub.consistent()["__other__"] == fields(submitted=2, completed=1, queued_normal=1)
    pub.counters.close()


def test_packets_after_a_flood_of_functions_walk_none_of_them():
    """Every request type a busy server sees, after one connection
    registered thousands of functions: none walks the function table, and
    the flood connection's own grabs do not sort its registrations."""
    h = Harness()
    flood = h.conn()
    for i in range(3000):
        h.send(flood, T.CAN_DO, b"many-%d" % i)
    h.core.functions.by_name = NoWalk(h.core.functions.by_name)
    c, w = h.conn(), h.worker(b"late", sleep=True)
    assert h.send(flood, T.PRE_SLEEP) == []
    h.send(c, T.ECHO_REQ, b"ping")
    h.submit(c, b"late", ptype=T.SUBMIT_JOB_BG)
    h.submit(c, b"many-5", ptype=T.SUBMIT_JOB_BG)
    h.send(w, T.WORK_COMPLETE, h.grab_handle(w), b"")
    h.send(flood, T.WORK_COMPLETE, h.grab_handle(flood), b"")
    assert h.grab_handle(flood) is None
    assert h.core.conns[flood].order is None
    h.send(c, T.GET_STATUS, b"H:vm:1")
    h.send(w, T.CANT_DO, b"late")
    h.tick()
    h.core.disconnect(w)
    assert h.core.counts() == (2, 0, 1)
