"""Results from workers and who gets them (PROTOCOL.md 3.5, 3.8, 3.16),
GET_STATUS/GET_STATUS_UNIQUE (3.12), OPTION_REQ, ECHO_REQ, SET_CLIENT_ID."""
import pytest

from corekit import T, got, types

NOT_FOUND_RESULT = b"JOB_NOT_FOUND\x00Job given in work result not found"
NOT_FOUND_DATA = b"JOB_NOT_FOUND\x00Job does not exist on server"
NOT_FOUND_EXC = b"JOB_NOT_FOUND\x00An exception was received for a job that does not exist"


@pytest.fixture
def running(h):
    """A client c with job H:vm:1 running on worker w."""
    c, w = h.conn(), h.worker(b"rev")
    h.submit(c, b"rev", b"", b"test")
    h.grab(w)
    return c, w


def test_typical_worker_cycle_transcript(h):
    w = h.conn()
    assert h.send(w, T.CAN_DO, b"rev") == []
    assert got(h.send(w, T.GRAB_JOB), w) == [(T.NO_JOB, b"")]
    assert h.send(w, T.PRE_SLEEP) == []
    c = h.conn()
    acts = h.send(c, T.SUBMIT_JOB, b"rev", b"", b"test")
    assert got(acts, c) == [(T.JOB_CREATED, b"H:vm:1")]
    assert [a.data for a in acts if a.conn == w] == [b"\x00RES\x00\x00\x00\x06\x00\x00\x00\x00"]
    assert h.grab(w) == (T.JOB_ASSIGN, b"H:vm:1\x00rev\x00test")
    acts = h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"tset")
    assert [a.data for a in acts] == [b"\x00RES\x00\x00\x00\x0d\x00\x00\x00\x0bH:vm:1\x00tset"]
    assert acts[0].conn == c


def test_work_data_warning_status_forwarded_and_job_stays(h, running):
    c, w = running
    for ptype in (T.WORK_DATA, T.WORK_WARNING):
        acts = h.send(w, ptype, b"H:vm:1", b"part\x00with nul")
        assert got(acts, c) == [(ptype, b"H:vm:1\x00part\x00with nul")]
    acts = h.send(w, T.WORK_STATUS, b"H:vm:1", b"1", b"4")
    assert got(acts, c) == [(T.WORK_STATUS, b"H:vm:1\x001\x004")]
    acts = h.send(c, T.GET_STATUS, b"H:vm:1")
    assert [a.data for a in acts] == [
        b"\x00RES\x00\x00\x00\x14\x00\x00\x00\x0eH:vm:1\x001\x001\x001\x004"]


def test_work_status_numbers_parsed_like_atoi_forwarded_verbatim(h, running):
    c, w = running
    acts = h.send(w, T.WORK_STATUS, b"H:vm:1", b"-1", b"12345678901234\x00x")
    assert got(acts, c) == [(T.WORK_STATUS, b"H:vm:1\x00-1\x0012345678901234\x00x")]
    acts = h.send(c, T.GET_STATUS, b"H:vm:1")
    assert got(acts, c) == [(T.STATUS_RES, b"H:vm:1\x001\x001\x004294967295\x001234567890")]
    h.send(w, T.WORK_STATUS, b"H:vm:1", b"abc", b" 7z")
    assert got(h.send(c, T.GET_STATUS, b"H:vm:1"), c)[0][1] == b"H:vm:1\x001\x001\x000\x007"


def test_complete_removes_job_second_complete_not_found(h, running):
    c, w = running
    h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"r")
    acts = h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"r")
    assert [a.data for a in acts] == [b"\x00RES\x00\x00\x00\x13\x00\x00\x00\x30" + NOT_FOUND_RESULT]
    assert got(h.send(c, T.GET_STATUS, b"H:vm:1"), c) == [
        (T.STATUS_RES, b"H:vm:1\x000\x000\x000\x000")]
    assert h.admin(c, b"status") == b"rev\t0\t0\t1\n.\n"


@pytest.mark.parametrize("ptype, err", [
    (T.WORK_DATA, NOT_FOUND_DATA), (T.WORK_WARNING, NOT_FOUND_DATA),
    (T.WORK_COMPLETE, NOT_FOUND_RESULT), (T.WORK_EXCEPTION, NOT_FOUND_EXC),
])
def test_work_from_non_owner_or_unknown_job(h, running, ptype, err):
    c, w = running
    other = h.worker(b"rev")
    for conn, handle in ((other, b"H:vm:1"), (w, b"H:vm:99"), (c, b"H:vm:1")):
        acts = h.send(conn, ptype, handle, b"d")
        assert got(acts, conn) == [(T.ERROR, err)] and len(acts) == 1
    assert h.admin(c, b"status") == b"rev\t1\t1\t2\n.\n"


def test_work_status_and_fail_from_non_owner(h, running):
    c, w = running
    other = h.conn()
    assert got(h.send(other, T.WORK_STATUS, b"H:vm:1", b"1", b"2"), other) == [
        (T.ERROR, NOT_FOUND_RESULT)]
    assert got(h.send(other, T.WORK_FAIL, b"H:vm:1"), other) == [(T.ERROR, NOT_FOUND_RESULT)]


def test_queued_job_is_not_owned(h):
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f")
    assert got(h.send(w, T.WORK_COMPLETE, b"H:vm:1", b""), w) == [(T.ERROR, NOT_FOUND_RESULT)]


def test_work_fail_forwarded_verbatim(h, running):
    c, w = running
    acts = h.send(w, T.WORK_FAIL, b"H:vm:1\x00")       # trailing NUL is harmless
    assert got(acts, c) == [(T.WORK_FAIL, b"H:vm:1\x00")]
    assert h.core.jobs.jobs == {}


def test_work_fail_handle_too_large(h, running):
    c, w = running
    acts = h.send(w, T.WORK_FAIL, b"H" * 64)
    assert got(acts, w) == [(T.ERROR, b"ARGUMENT_TOO_LARGE\x00Error occurred due to "
                                      b"GEARMAND_JOB_HANDLE_SIZE being too small from snprintf")]
    assert got(h.send(w, T.WORK_FAIL, b"H" * 63), w) == [(T.ERROR, NOT_FOUND_RESULT)]


def test_exception_forwarding_and_conversion_to_bare_fail(h):
    plain, opted, w = h.conn(), h.conn(), h.worker(b"f")
    acts = h.send(opted, T.OPTION_REQ, b"EXCEPTIONS")
    assert [a.data for a in acts] == [b"\x00RES\x00\x00\x00\x1b\x00\x00\x00\x0aEXCEPTIONS"]
    h.submit(plain, b"f", b"u")
    h.submit(opted, b"f", b"u")
    h.grab(w)
    acts = h.send(w, T.WORK_EXCEPTION, b"H:vm:1", b"boom")
    assert got(acts, opted) == [(T.WORK_EXCEPTION, b"H:vm:1\x00boom")]
    assert [a.data for a in acts if a.conn == plain] == [
        b"\x00RES\x00\x00\x00\x0e\x00\x00\x00\x06H:vm:1"]             # bare handle, size 6
    assert h.core.jobs.jobs == {}


def test_server_wide_exceptions_option(make):
    h = make(exceptions=True)
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f")
    h.grab(w)
    assert got(h.send(w, T.WORK_EXCEPTION, b"H:vm:1", b"e"), c) == [
        (T.WORK_EXCEPTION, b"H:vm:1\x00e")]


@pytest.mark.parametrize("option", [b"foo", b"exceptions_x", b"e" * 64, b"exceptions" + b"x" * 60])
def test_unknown_option(h, option):
    c = h.conn()
    assert [a.data for a in h.send(c, T.OPTION_REQ, option)] == [
        b"\x00RES\x00\x00\x00\x13\x00\x00\x00\x35UNKNOWN_OPTION\x00Server does not recognize given option"]
    assert not h.core.conns[c].exceptions


def test_option_echo_keeps_trailing_nul(h):
    c = h.conn()
    assert got(h.send(c, T.OPTION_REQ, b"exceptions\x00"), c) == [(T.OPTION_RES, b"exceptions\x00")]
    assert h.core.conns[c].exceptions


def test_background_submitters_receive_nothing(h):
    b, w = h.conn(), h.worker(b"f")
    h.submit(b, b"f", ptype=T.SUBMIT_JOB_BG)
    h.grab(w)
    assert h.send(w, T.WORK_DATA, b"H:vm:1", b"x") == []
    assert h.send(w, T.WORK_STATUS, b"H:vm:1", b"1", b"2") == []
    assert h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"x") == []
    assert got(h.send(b, T.GET_STATUS, b"H:vm:1"), b) == [(T.STATUS_RES, b"H:vm:1\x000\x000\x000\x000")]


class TestStatus:
    def test_get_status_queued_and_unknown(self, h):
        c = h.conn()
        h.submit(c, b"f", ptype=T.SUBMIT_JOB_BG)
        assert got(h.send(c, T.GET_STATUS, b"H:vm:1"), c) == [
            (T.STATUS_RES, b"H:vm:1\x001\x000\x000\x000")]
        assert got(h.send(c, T.GET_STATUS, b"H:vm:1\x00junk"), c) == [
            (T.STATUS_RES, b"H:vm:1\x001\x000\x000\x000")]

    def test_get_status_handle_of_64_bytes_gets_no_reply(self, h):
        c = h.conn()
        assert h.send(c, T.GET_STATUS, b"H" * 64) == []
        assert types(h.send(c, T.GET_STATUS, b"H" * 63), c) == [T.STATUS_RES]

    def test_get_status_unique_transcripts(self, h):
        c = h.conn()
        h.submit(c, b"f", b"u1")
        assert [a.data for a in h.send(c, T.GET_STATUS_UNIQUE, b"u1")] == [
            b"\x00RES\x00\x00\x00\x2a\x00\x00\x00\x0cu1\x001\x000\x000\x000\x001"]
        assert got(h.send(c, T.GET_STATUS_UNIQUE, b"nope"), c) == [
            (T.STATUS_RES_UNIQUE, b"nope\x000\x000\x000\x000\x000")]
        assert got(h.send(c, T.GET_STATUS_UNIQUE, b""), c) == [
            (T.STATUS_RES_UNIQUE, b"\x000\x000\x000\x000\x000")]

    def test_get_status_unique_too_long_drops_connection(self, h):
        c = h.conn()
        acts = h.send(c, T.GET_STATUS_UNIQUE, b"u" * 65)
        assert got(acts, c) == [("close", None)]
        assert c not in h.core.conns
        assert h.send(c, T.ECHO_REQ, b"x") == []        # gone

    def test_background_counts_zero_clients(self, h):
        c = h.conn()
        h.submit(c, b"f", b"bgu", ptype=T.SUBMIT_JOB_BG)
        assert got(h.send(c, T.GET_STATUS_UNIQUE, b"bgu"), c)[0][1].endswith(b"\x000\x000")


def test_echo(h):
    c = h.conn()
    assert [a.data for a in h.send(c, T.ECHO_REQ, b"hello\x00world")] == [
        b"\x00RES\x00\x00\x00\x11\x00\x00\x00\x0bhello\x00world"]
    assert got(h.send(c, T.ECHO_REQ, b""), c) == [(T.ECHO_RES, b"")]


def test_set_client_id_shown_in_workers_truncated(h):
    c = h.conn()
    assert h.send(c, T.SET_CLIENT_ID, b"my id with spaces") == []
    assert h.admin(c, b"workers") == b"38 127.0.0.1 my id with spaces :\n.\n"
    h.send(c, T.SET_CLIENT_ID, b"x" * 200)
    assert h.admin(c, b"workers") == b"38 127.0.0.1 " + b"x" * 127 + b" :\n.\n"


def test_packets_for_unknown_connection_are_ignored(h):
    assert h.send(999, T.SUBMIT_JOB, b"f", b"", b"x") == []
    h.core.disconnect(999)
    h.core.admin(999, b"status", True)
    assert h.take() == []
