"""Which job a grab gets (PROTOCOL.md 3.6), registrations, and CANT_DO /
RESET_ABILITIES while a job runs (6 item 17)."""
import random

import pytest

from corekit import T, got, types


def grabs(h, w, n):
    out = []
    for _ in range(n):
        p, payload = h.grab(w, T.GRAB_JOB_UNIQ)
        out.append(None if p == T.NO_JOB else payload.split(b"\0")[2])
    return out


def test_priority_within_a_function(h):
    c, w = h.conn(), h.worker(b"fpri")
    for unique, ptype in ((b"L1", T.SUBMIT_JOB_LOW), (b"N1", T.SUBMIT_JOB), (b"H1", T.SUBMIT_JOB_HIGH),
                          (b"L2", T.SUBMIT_JOB_LOW_BG), (b"H2", T.SUBMIT_JOB_HIGH_BG),
                          (b"N2", T.SUBMIT_JOB_BG)):
        h.submit(c, b"fpri", unique, ptype=ptype)
    assert h.admin(c, b"prioritystatus") == b"fpri\t2\t2\t2\t1\n.\n"
    assert grabs(h, w, 7) == [b"H1", b"H2", b"N1", b"N2", b"L1", b"L2", None]


def test_registrations_newest_first(h):
    c = h.conn()
    w = h.worker(b"oa", b"ob", b"oc")
    for f in (b"oa", b"ob", b"oc"):
        for i in range(2):
            h.submit(c, f, f + b"%d" % i)
    assert grabs(h, w, 7) == [b"oc0", b"oc1", b"ob0", b"ob1", b"oa0", b"oa1", None]
    assert h.admin(c, b"workers") == b"38 127.0.0.1 - :\n39 127.0.0.1 - : oc ob oa\n.\n"


def test_priority_not_honoured_across_functions(h):
    c = h.conn()
    w = h.worker(b"a", b"b")
    h.submit(c, b"a", b"a-high", ptype=T.SUBMIT_JOB_HIGH)
    h.submit(c, b"b", b"b-low", ptype=T.SUBMIT_JOB_LOW)
    assert grabs(h, w, 2) == [b"b-low", b"a-high"]


def test_round_robin_rotates_functions(make):
    h = make(round_robin=True)
    c = h.conn()
    w = h.worker(b"ra", b"rb", b"rc")
    for f in (b"ra", b"rb", b"rc"):
        for i in range(2):
            h.submit(c, f, f + b"%d" % i)
    assert grabs(h, w, 7) == [b"rc0", b"rb0", b"ra0", b"rc1", b"rb1", b"ra1", None]


def test_duplicate_can_do_counts_twice(h):
    c = h.conn()
    w = h.worker(b"dup", b"dup")
    assert h.admin(c, b"workers") == b"38 127.0.0.1 - :\n39 127.0.0.1 - : dup dup\n.\n"
    assert h.admin(c, b"status") == b"dup\t0\t0\t2\n.\n"
    h.send(w, T.CANT_DO, b"dup")
    assert h.admin(c, b"status") == b"dup\t0\t0\t0\n.\n"


def test_can_do_name_is_whole_payload(h):
    c = h.conn()
    w = h.worker(b"foo\x00")
    h.submit(c, b"foo")
    assert h.grab(w) == (T.NO_JOB, b"")


def test_reset_abilities(h):
    c = h.conn()
    w = h.worker(b"a", b"b")
    h.submit(c, b"a")
    assert h.send(w, T.RESET_ABILITIES) == []
    assert h.grab(w) == (T.NO_JOB, b"")
    assert h.admin(c, b"status") == b"a\t1\t0\t0\nb\t0\t0\t0\n.\n"


@pytest.mark.parametrize("ptype, args", [(T.CANT_DO, (b"f",)), (T.RESET_ABILITIES, ())])
def test_unregistering_keeps_running_job_and_delivers_result(h, ptype, args):
    c = h.conn()
    w = h.worker(b"f")
    h.submit(c, b"f")
    h.submit(c, b"f")
    h.grab(w)
    assert h.send(w, ptype, *args) == []
    assert h.admin(c, b"status") == b"f\t2\t1\t0\n.\n"
    assert h.grab(w) == (T.NO_JOB, b"")                     # no new assignment
    acts = h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"result")
    assert got(acts, c) == [(T.WORK_COMPLETE, b"H:vm:1\x00result")]
    assert h.admin(c, b"show jobs") == b"H:vm:2\t0\t0\t0\n.\n"


def test_worker_may_hold_several_jobs(h):
    c, w = h.conn(), h.worker(b"f")
    for _ in range(3):
        h.submit(c, b"f")
    assert [h.grab_handle(w) for _ in range(4)] == [b"H:vm:1", b"H:vm:2", b"H:vm:3", None]
    assert h.admin(c, b"status") == b"f\t3\t3\t1\n.\n"


def test_grab_with_stray_payload_args(h):
    w = h.worker(b"f")
    assert types(h.send(w, T.GRAB_JOB), w) == [T.NO_JOB]


@pytest.mark.parametrize("round_robin", [False, True])
def test_many_functions_scan_of_ready_set_matches_walk(make, round_robin):
    """A worker with many functions picks through the set of functions with
    queued jobs; before every grab that must equal the walk of its
    registrations in order."""
    from mpgearman.coordinator.workers import Registry
    rnd = random.Random(7)
    names = [b"f%d" % i for i in range(40)]
    h = make(round_robin=round_robin)
    c = h.conn()
    regs = names[:]
    rnd.shuffle(regs)
    w = h.worker(*regs, regs[3], regs[10])          # with duplicates
    for i in range(120):
        h.submit(c, names[rnd.randrange(40)], b"u%d" % i,
                 ptype=rnd.choice([T.SUBMIT_JOB, T.SUBMIT_JOB_HIGH, T.SUBMIT_JOB_LOW]))
    conn, ready = h.core.conns[w], h.core.functions.ready
    served, extra = [], 0
    while True:
        assert Registry.walk(conn) is Registry.scan_ready(conn, ready)
        handle = h.grab_handle(w)
        if handle is None:
            break
        served.append(handle)
        if rnd.random() < 0.2:
            h.submit(c, names[rnd.randrange(40)])
            extra += 1
    assert len(set(served)) == len(served) == 120 + extra
    assert extra > 10
