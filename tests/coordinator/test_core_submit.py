"""Submissions: JOB_CREATED, handles, unique limits, coalescing (PROTOCOL.md
3.2-3.4), reduce and SCHED submissions, maxqueue (3.13)."""
import pytest

from corekit import T, got, types

JOB_CREATED_1 = b"\x00RES\x00\x00\x00\x08\x00\x00\x00\x06H:vm:1"
TOO_LARGE = b"ARGUMENT_TOO_LARGE\x00Unique value too large"
QUEUE_FULL = b"QUEUE_ERROR\x00Job queue is full"


def test_job_created_bytes_and_numbering(h):
    c = h.conn()
    acts = h.send(c, T.SUBMIT_JOB, b"reverse", b"", b"test")
    assert [a.data for a in acts] == [JOB_CREATED_1]
    assert h.submit(c, b"reverse") == b"H:vm:2"
    assert h.submit(c, b"other", ptype=T.SUBMIT_JOB_BG) == b"H:vm:3"


def test_handle_prefix_replaces_whole_prefix(make):
    h = make(job_handle_prefix="P")
    assert h.submit(h.conn(), b"f") == b"P:1"


def test_default_prefix_is_host_name_and_port(make):
    import socket
    h = make(job_handle_prefix="", port=4731)
    assert h.submit(h.conn(), b"f") == b"H:" + socket.gethostname().encode() + b":4731:1"


@pytest.mark.parametrize("ptype", [T.SUBMIT_JOB, T.SUBMIT_JOB_BG, T.SUBMIT_JOB_HIGH,
                                   T.SUBMIT_JOB_HIGH_BG, T.SUBMIT_JOB_LOW, T.SUBMIT_JOB_LOW_BG])
def test_unique_over_64_refused_without_consuming_a_handle(h, ptype):
    c = h.conn()
    acts = h.send(c, ptype, b"f", b"u" * 65, b"d")
    assert got(acts, c) == [(T.ERROR, TOO_LARGE)]
    assert b"f\t" not in h.admin(c, b"status")       # no function created either
    assert h.submit(c, b"f") == b"H:vm:1"


def test_unique_of_64_bytes_is_kept_whole_and_coalesces(h):
    c, w = h.conn(), h.worker(b"f")
    u = b"u" * 64
    assert h.submit(c, b"f", u, b"a") == b"H:vm:1"
    assert h.submit(c, b"f", u, b"b") == b"H:vm:1"
    acts = h.send(c, T.GET_STATUS_UNIQUE, u)
    assert got(acts, c) == [(T.STATUS_RES_UNIQUE, u + b"\x001\x000\x000\x000\x002")]
    assert h.grab(w, T.GRAB_JOB_UNIQ) == (T.JOB_ASSIGN_UNIQ, b"H:vm:1\x00f\x00" + u + b"\x00a")
    assert h.admin(c, b"show unique jobs") == u + b"\n.\n"


def test_empty_unique_never_coalesces(h):
    c = h.conn()
    assert h.submit(c, b"f", b"", b"same") == b"H:vm:1"
    assert h.submit(c, b"f", b"", b"same") == b"H:vm:2"


def test_dash_coalesces_by_data_and_keeps_dash(h):
    c, w = h.conn(), h.worker(b"f")
    assert h.submit(c, b"f", b"-", b"payload") == b"H:vm:1"
    assert h.submit(c, b"f", b"-", b"payload") == b"H:vm:1"
    assert h.submit(c, b"f", b"-", b"other") == b"H:vm:2"
    assert h.submit(c, b"g", b"-", b"payload") == b"H:vm:3"       # per function
    assert h.grab(w, T.GRAB_JOB_UNIQ) == (T.JOB_ASSIGN_UNIQ, b"H:vm:1\x00f\x00-\x00payload")
    # GET_STATUS_UNIQUE does not find dash jobs
    acts = h.send(c, T.GET_STATUS_UNIQUE, b"-")
    assert got(acts, c) == [(T.STATUS_RES_UNIQUE, b"-\x000\x000\x000\x000\x000")]


def test_dash_with_empty_data_never_coalesces(h):
    c = h.conn()
    assert h.submit(c, b"f", b"-", b"") == b"H:vm:1"
    assert h.submit(c, b"f", b"-", b"") == b"H:vm:2"


def test_same_unique_in_two_functions_gives_two_jobs(h):
    c = h.conn()
    assert h.submit(c, b"f1", b"u", b"a") == b"H:vm:1"
    assert h.submit(c, b"f2", b"u", b"a") == b"H:vm:2"
    # GET_STATUS_UNIQUE answers the most recently created one
    w = h.worker(b"f2")
    h.grab(w)
    acts = h.send(c, T.GET_STATUS_UNIQUE, b"u")
    assert got(acts, c) == [(T.STATUS_RES_UNIQUE, b"u\x001\x001\x000\x000\x001")]
    h.send(w, T.WORK_COMPLETE, b"H:vm:2", b"")
    acts = h.send(c, T.GET_STATUS_UNIQUE, b"u")
    assert got(acts, c) == [(T.STATUS_RES_UNIQUE, b"u\x001\x000\x000\x000\x001")]


def test_transcript_3_4_coalescing_across_fg_bg_and_running(h):
    c1, c2, c3 = h.conn(), h.conn(), h.conn()
    assert h.submit(c1, b"f2", b"u1", b"data1") == b"H:vm:1"
    assert h.submit(c2, b"f2", b"u1", b"otherdata", T.SUBMIT_JOB_HIGH) == b"H:vm:1"
    assert h.submit(c3, b"f2", b"u1", b"bgdata", T.SUBMIT_JOB_BG) == b"H:vm:1"
    w = h.worker(b"f2")
    assert h.grab(w, T.GRAB_JOB_UNIQ) == (T.JOB_ASSIGN_UNIQ, b"H:vm:1\x00f2\x00u1\x00data1")
    assert h.submit(c3, b"f2", b"u1", b"late") == b"H:vm:1"     # attached while running
    a1 = h.send(w, T.WORK_DATA, b"H:vm:1", b"d")
    a2 = h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"done")
    for c in (c1, c2, c3):
        assert got(a1, c) == [(T.WORK_DATA, b"H:vm:1\x00d")]
        assert got(a2, c) == [(T.WORK_COMPLETE, b"H:vm:1\x00done")]
    assert got(a1 + a2, w) == []
    # newest attachment first
    assert [a.conn for a in a2] == [c3, c2, c1]
    assert h.admin(c1, b"show jobs") == b".\n"


def test_bg_first_then_fg_attaches(h):
    c, b = h.conn(), h.conn()
    assert h.submit(b, b"f", b"u", b"x", T.SUBMIT_JOB_BG) == b"H:vm:1"
    assert h.submit(c, b"f", b"u", b"y") == b"H:vm:1"
    w = h.worker(b"f")
    h.grab(w)
    acts = h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"r")
    assert got(acts, c) == [(T.WORK_COMPLETE, b"H:vm:1\x00r")]
    assert got(acts, b) == []


def test_fg_first_then_bg_just_gets_handle(h):
    c, b = h.conn(), h.conn()
    h.submit(c, b"f", b"u", b"x")
    assert h.submit(b, b"f", b"u", b"y", T.SUBMIT_JOB_LOW_BG) == b"H:vm:1"
    w = h.worker(b"f")
    assert h.grab(w) == (T.JOB_ASSIGN, b"H:vm:1\x00f\x00x")    # data and nature unchanged
    acts = h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"r")
    assert got(acts, b) == [] and types(acts, c) == [T.WORK_COMPLETE]


def test_same_connection_attached_twice_gets_everything_twice(h):
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f", b"u")
    h.submit(c, b"f", b"u")
    h.grab(w)
    acts = h.send(w, T.WORK_STATUS, b"H:vm:1", b"1", b"2")
    assert got(acts, c) == [(T.WORK_STATUS, b"H:vm:1\x001\x002")] * 2
    acts = h.send(c, T.GET_STATUS_UNIQUE, b"u")
    assert got(acts, c)[0][1].endswith(b"\x002")
    acts = h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"")
    assert types(acts, c) == [T.WORK_COMPLETE] * 2


def test_unique_reusable_once_job_done(h):
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f", b"u")
    h.grab(w)
    h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"")
    assert h.submit(c, b"f", b"u") == b"H:vm:2"


def test_sched_is_not_expected(h):
    c = h.conn()
    acts = h.send(c, T.SUBMIT_JOB_SCHED, b"f", b"", b"1", b"2", b"3", b"4", b"5", b"d")
    assert [a.data for a in acts] == [
        b"\x00RES\x00\x00\x00\x13\x00\x00\x00\x24INVALID_COMMAND\x00Command not expected"]
    assert h.core.jobs.jobs == {}


@pytest.mark.parametrize("ptype", [5, T.NOOP, T.JOB_CREATED, T.NO_JOB, T.ECHO_RES, T.ERROR,
                                   T.STATUS_RES, T.ALL_YOURS, T.OPTION_RES,
                                   T.JOB_ASSIGN_UNIQ, T.STATUS_RES_UNIQUE])
def test_response_types_are_not_expected(h, ptype):
    c = h.conn()
    from mpgearman.protocol.packets import ARGS
    argc, has_data = ARGS[ptype]
    args = (b"a",) * argc + ((b"data",) if has_data else ())
    assert got(h.send(c, ptype, *args), c) == [(T.ERROR, b"INVALID_COMMAND\x00Command not expected")]


def test_reduce_job_checks_unique_not_reducer(h):
    c, w = h.conn(), h.worker(b"fred")
    acts = h.send(c, T.SUBMIT_REDUCE_JOB, b"fred", b"u" * 65, b"r", b"", b"d")
    assert got(acts, c) == [(T.ERROR, TOO_LARGE)]
    reducer = b"r" * 100
    acts = h.send(c, T.SUBMIT_REDUCE_JOB, b"fred", b"ru1", reducer, b"", b"reduce-data")
    assert got(acts, c) == [(T.JOB_CREATED, b"H:vm:1")]
    assert h.grab(w, T.GRAB_JOB_ALL) == (
        T.JOB_ASSIGN_ALL, b"H:vm:1\x00fred\x00ru1\x00" + reducer + b"\x00reduce-data")


def test_reduce_background_and_grab_variants(h):
    c, w = h.conn(), h.worker(b"fred")
    for _ in range(3):
        acts = h.send(c, T.SUBMIT_REDUCE_JOB_BACKGROUND, b"fred", b"", b"myreducer", b"", b"rd")
        assert types(acts, c) == [T.JOB_CREATED]
    assert h.grab(w, T.GRAB_JOB) == (T.JOB_ASSIGN, b"H:vm:1\x00fred\x00rd")
    assert h.grab(w, T.GRAB_JOB_UNIQ) == (T.JOB_ASSIGN_UNIQ, b"H:vm:2\x00fred\x00\x00rd")
    assert h.grab(w, T.GRAB_JOB_ALL) == (
        T.JOB_ASSIGN_ALL, b"H:vm:3\x00fred\x00\x00myreducer\x00rd")
    assert h.admin(c, b"show jobs") == b"H:vm:1\t0\t0\t1\nH:vm:2\t0\t0\t1\nH:vm:3\t0\t0\t1\n.\n"


def test_grab_all_without_reducer_is_assign_uniq(h):
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f", b"uq", b"abc\n")
    assert h.grab(w, T.GRAB_JOB_ALL) == (T.JOB_ASSIGN_UNIQ, b"H:vm:1\x00f\x00uq\x00abc\n")


class TestMaxqueue:
    def test_queue_full_error_bytes_and_no_handle_consumed(self, h):
        c = h.conn()
        h.submit(c, b"f")
        assert h.admin(c, b"maxqueue f 2") == b"OK\r\n"
        h.submit(c, b"f", ptype=T.SUBMIT_JOB_LOW)
        acts = h.send(c, T.SUBMIT_JOB_HIGH_BG, b"f", b"", b"x")
        assert [a.data for a in acts] == [
            b"\x00RES\x00\x00\x00\x13\x00\x00\x00\x1d" + QUEUE_FULL]
        h.admin(c, b"maxqueue f 0")
        assert h.submit(c, b"f") == b"H:vm:3"

    def test_limit_per_priority_against_all_jobs(self, h):
        c = h.conn()
        h.admin(c, b"create function f")
        assert h.admin(c, b"maxqueue f 0 2 0") == b"OK\r\n"
        for _ in range(3):
            h.submit(c, b"f", ptype=T.SUBMIT_JOB_HIGH)
        assert types(h.send(c, T.SUBMIT_JOB, b"f", b"", b"x"), c) == [T.ERROR]
        assert types(h.send(c, T.SUBMIT_JOB_LOW, b"f", b"", b"x"), c) == [T.JOB_CREATED]

    def test_running_jobs_count(self, h):
        c, w = h.conn(), h.worker(b"f")
        h.admin(c, b"maxqueue f 1")
        h.submit(c, b"f")
        h.grab(w)
        assert types(h.send(c, T.SUBMIT_JOB, b"f", b"", b"x"), c) == [T.ERROR]

    def test_coalesced_submission_never_rejected(self, h):
        c = h.conn()
        h.submit(c, b"f", b"u")
        h.admin(c, b"maxqueue f 1")
        assert h.submit(c, b"f", b"u") == b"H:vm:1"
        assert types(h.send(c, T.SUBMIT_JOB, b"f", b"v", b"x"), c) == [T.ERROR]

    @pytest.mark.parametrize("line, limits", [
        (b"maxqueue f", [0, 0, 0]),
        (b"maxqueue f 5", [5, 5, 5]),
        (b"maxqueue f 5 6", [5, 6, 0]),
        (b"maxqueue f 5 6 7", [5, 6, 7]),
        (b"maxqueue f -3 abc 4294967297", [0, 0, 1]),
    ])
    def test_argument_forms(self, h, line, limits):
        c = h.conn()
        h.admin(c, b"create function f")
        h.admin(c, b"maxqueue f 9 9 9")
        assert h.admin(c, line) == b"OK\r\n"
        assert h.core.functions.by_name[b"f"].maxq == limits

    def test_unknown_function_is_ok_and_creates_nothing(self, h):
        c = h.conn()
        assert h.admin(c, b"maxqueue nosuch 3") == b"OK\r\n"
        assert h.admin(c, b"status") == b".\n"
