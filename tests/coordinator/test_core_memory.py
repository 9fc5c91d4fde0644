"""What functions cost: a function with no jobs and no workers keeps only
its name and counters (gearmand lists every name ever used in `status`), and
what a connection held (registrations, sleeper entries, queues and indexes
of the functions it alone used) goes back when it closes."""
import gc
import tracemalloc

from corekit import T, Harness, check_invariants

N = 3000
IDLE_BYTES = 400        # per idle function: name, table entry, slim record
REGISTERED_BYTES = 120  # more per registration: its key and the connection's table entry


def traced(fn) -> int:
    """Bytes still allocated after fn() ran, against before it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = fn()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, keep
    finally:
        tracemalloc.stop()


def idle(fn) -> bool:
    return fn.queues is None and fn.by_unique is None and fn.by_data is None \
        and fn.sleepers is None


def test_functions_a_closed_connection_registered_cost_almost_nothing():
    h = Harness()

    def flood():
        few, many = h.conn(), h.conn()
        for i in range(N):
            h.send(many, T.CAN_DO, b"function-%08d" % i)
            if i % 100 == 0:
                h.send(few, T.CAN_DO, b"function-%08d" % i)
        h.send(few, T.PRE_SLEEP)
        h.send(many, T.PRE_SLEEP)
        h.core.disconnect(few)
        h.core.disconnect(many)
        h.core.functions.dirty.clear()          # what the loop publishes each turn
        return None

    grown, _ = traced(flood)
    fns = list(h.core.functions.by_name.values())
    assert len(fns) == N and all(idle(fn) and fn.workers == 0 for fn in fns)
    assert not h.core.registry.broad
    assert grown < IDLE_BYTES * N, f"{grown / N:.0f} bytes per idle function"
    check_invariants(h.core)


def test_a_plain_registration_costs_a_key():
    """CAN_DO without a timeout, once: the connection's table maps the
    function to its key alone (lists of (key, timeout) are for duplicates
    and CAN_DO_TIMEOUT)."""
    h = Harness()
    w = h.conn()
    for i in range(N):                      # the functions exist already
        h.send(w, T.CAN_DO, b"function-%08d" % i)
    h.send(w, T.RESET_ABILITIES)
    h.core.functions.dirty.clear()

    def register():
        for i in range(N):
            h.send(w, T.CAN_DO, b"function-%08d" % i)
        h.core.functions.dirty.clear()

    grown, _ = traced(register)
    assert grown < REGISTERED_BYTES * N, f"{grown / N:.0f} bytes per registration"
    check_invariants(h.core)


def test_a_function_whose_jobs_ended_lets_go_of_its_queues_and_indexes():
    h = Harness()
    c = h.conn()
    h.submit(c, b"f", unique=b"u1", ptype=T.SUBMIT_JOB_BG)
    h.submit(c, b"f", unique=b"-", data=b"same", ptype=T.SUBMIT_JOB_BG)
    h.submit(c, b"f", ptype=T.SUBMIT_JOB_HIGH_BG)
    fn = h.core.functions.by_name[b"f"]
    assert not idle(fn)
    w = h.worker(b"f", sleep=False)
    for _ in range(3):
        h.send(w, T.WORK_COMPLETE, h.grab_handle(w), b"")
    assert not idle(fn)             # a worker is still registered: kept for it
    h.send(w, T.PRE_SLEEP)
    h.send(w, T.CANT_DO, b"f")
    assert idle(fn)
    check_invariants(h.core)
    # and everything comes back on demand
    h.submit(c, b"f", unique=b"u1", ptype=T.SUBMIT_JOB_BG)
    h.submit(c, b"f", unique=b"u1", ptype=T.SUBMIT_JOB_BG)       # coalesced
    w2 = h.worker(b"f")
    h.send(w2, T.WORK_COMPLETE, h.grab_handle(w2), b"")
    assert h.grab_handle(w2) is None
    h.send(w2, T.RESET_ABILITIES)
    assert idle(fn) and fn.submitted == 4 and fn.completed == 4
    check_invariants(h.core)


def test_abandoned_jobs_leave_nothing_behind_once_reaped():
    h = Harness()
    c = h.conn()
    h.submit(c, b"f", data=b"1")
    h.send(c, T.SUBMIT_JOB_EPOCH, b"f", b"", b"%d" % (h.clock() + 5), b"x")
    h.core.disconnect(c)
    fn = h.core.functions.by_name[b"f"]
    h.clock.advance(6)
    h.tick()
    w = h.worker(b"f")
    assert h.grab_handle(w) is not None      # the epoch job; the abandoned one is reaped
    h.core.disconnect(w)                     # requeued, still kept
    assert not idle(fn) and fn.total == 1
    c2 = h.conn()
    assert h.admin(c2, b"drop function f") == b"ERR there are still queued jobs\r\n"
    check_invariants(h.core)


def test_a_closed_connection_is_on_no_sleeper_list():
    h = Harness()
    stays = h.worker(b"f", b"g", sleep=True)
    gone = h.worker(b"f", b"g", sleep=True)
    broad = h.worker(*[b"b%d" % i for i in range(40)], b"f", sleep=True)
    h.submit(h.conn(), b"g", ptype=T.SUBMIT_JOB_BG)       # g keeps a job
    gone_conn, broad_conn = h.core.conns[gone], h.core.conns[broad]
    h.core.disconnect(gone)
    h.core.disconnect(broad)
    for name in (b"f", b"g"):
        fn = h.core.functions.by_name[name]
        assert gone_conn not in fn.sleepers and fn.workers == 1
    assert broad_conn not in h.core.registry.broad
    h.send(stays, T.CANT_DO, b"f")
    assert idle(h.core.functions.by_name[b"f"])
    check_invariants(h.core)
