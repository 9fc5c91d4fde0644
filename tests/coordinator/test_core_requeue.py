"""Worker loss and --job-retries (PROTOCOL.md 3.9), client disconnect and
abandoned jobs (3.10), admin cancel (4.2)."""
import pytest

from corekit import T, got, types


def test_worker_loss_requeues_to_the_tail(h):
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f", b"first")
    h.grab(w)
    h.send(w, T.WORK_STATUS, b"H:vm:1", b"3", b"9")
    h.submit(c, b"f", b"second")
    h.core.disconnect(w)
    assert h.take() == []                       # clients are not told
    assert h.admin(c, b"show jobs") == b"H:vm:1\t1\t0\t0\nH:vm:2\t0\t0\t0\n.\n"
    assert got(h.send(c, T.GET_STATUS, b"H:vm:1"), c) == [
        (T.STATUS_RES, b"H:vm:1\x001\x000\x000\x000")]   # numerator/denominator reset
    w2 = h.worker(b"f")
    assert [h.grab_handle(w2) for _ in range(3)] == [b"H:vm:2", b"H:vm:1", None]
    acts = h.send(w2, T.WORK_COMPLETE, b"H:vm:1", b"ok")
    assert got(acts, c) == [(T.WORK_COMPLETE, b"H:vm:1\x00ok")]


def test_job_retries_two_means_two_attempts(make):
    h = make(job_retries=2)
    c = h.conn()
    h.submit(c, b"f")
    w = h.worker(b"f")
    h.grab(w)
    h.core.disconnect(w)
    assert h.take() == []
    w = h.worker(b"f")
    assert h.grab_handle(w) == b"H:vm:1"
    h.core.disconnect(w)
    assert [a.data for a in h.take()] == [b"\x00RES\x00\x00\x00\x0e\x00\x00\x00\x06H:vm:1"]
    assert h.core.jobs.jobs == {}
    assert h.admin(c, b"status") == b"f\t0\t0\t0\n.\n"


def test_job_retries_zero_is_unlimited(h):
    c = h.conn()
    h.submit(c, b"f")
    for attempt in range(1, 30):
        w = h.worker(b"f")
        assert h.grab_handle(w) == b"H:vm:1"
        h.core.disconnect(w)
        assert h.take() == []
    assert h.admin(c, b"show jobs") == b"H:vm:1\t29\t0\t0\n.\n"


def test_worker_loss_requeues_every_job_it_held(h):
    c, w = h.conn(), h.worker(b"f")
    for _ in range(3):
        h.submit(c, b"f")
        h.grab(w)
    h.core.disconnect(w)
    assert h.admin(c, b"status") == b"f\t3\t0\t0\n.\n"
    assert h.admin(c, b"prioritystatus") == b"f\t0\t3\t0\t0\n.\n"


class TestClientDisconnect:
    def test_queued_job_abandoned_counted_until_reaped_by_grab(self, h):
        c = h.conn()
        h.submit(c, b"f")
        h.submit(c, b"f")
        h.core.disconnect(c)
        assert h.take() == []
        adm = h.conn()
        assert h.admin(adm, b"status") == b"f\t2\t0\t0\n.\n"
        assert h.admin(adm, b"show jobs") == b"H:vm:1\t0\t1\t0\nH:vm:2\t0\t1\t0\n.\n"
        w = h.worker(b"f")
        assert h.grab(w) == (T.NO_JOB, b"")
        assert h.admin(adm, b"status") == b"f\t0\t0\t1\n.\n"

    def test_running_job_keeps_running_results_go_nowhere(self, h):
        c, w = h.conn(), h.worker(b"f")
        h.submit(c, b"f")
        h.grab(w)
        h.core.disconnect(c)
        assert h.admin(w, b"show jobs") == b"H:vm:1\t0\t1\t0\n.\n"
        assert h.send(w, T.WORK_DATA, b"H:vm:1", b"d") == []
        assert h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"r") == []
        assert h.core.jobs.jobs == {}

    def test_abandoned_running_job_requeued_then_discarded(self, h):
        c, w = h.conn(), h.worker(b"f")
        h.submit(c, b"f")
        h.grab(w)
        h.core.disconnect(c)
        h.core.disconnect(w)
        h.take()
        adm = h.conn()
        assert h.admin(adm, b"show jobs") == b"H:vm:1\t1\t1\t0\n.\n"
        w2 = h.worker(b"f")
        assert h.grab(w2) == (T.NO_JOB, b"")
        assert h.core.jobs.jobs == {}

    def test_other_clients_keep_the_job(self, h):
        c1, c2, w = h.conn(), h.conn(), h.worker(b"f")
        h.submit(c1, b"f", b"u")
        h.submit(c2, b"f", b"u")
        h.core.disconnect(c1)
        h.grab(w)
        acts = h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"r")
        assert [a.conn for a in acts] == [c2]

    def test_background_job_not_cancelled_by_coalesced_foreground_client(self, h):
        b, c = h.conn(), h.conn()
        h.submit(b, b"f", b"u", ptype=T.SUBMIT_JOB_BG)
        h.submit(c, b"f", b"u")
        h.core.disconnect(c)
        assert h.admin(b, b"show jobs") == b"H:vm:1\t0\t0\t1\n.\n"
        w = h.worker(b"f")
        assert h.grab_handle(w) == b"H:vm:1"

    def test_background_submission_onto_foreground_job_keeps_it(self, h):
        c, b = h.conn(), h.conn()
        h.submit(c, b"f", b"u")
        h.submit(b, b"f", b"u", ptype=T.SUBMIT_JOB_BG)
        h.core.disconnect(c)
        w = h.worker(b"f")
        assert h.grab_handle(w) == b"H:vm:1"

    def test_new_foreground_client_revives_abandoned_job(self, h):
        c1, c2 = h.conn(), h.conn()
        h.submit(c1, b"f", b"u")
        h.core.disconnect(c1)
        assert h.submit(c2, b"f", b"u") == b"H:vm:1"
        w = h.worker(b"f")
        assert h.grab_handle(w) == b"H:vm:1"
        assert types(h.send(w, T.WORK_COMPLETE, b"H:vm:1", b""), c2) == [T.WORK_COMPLETE]

    def test_client_that_is_also_the_worker(self, h):
        cw = h.worker(b"f")
        h.submit(cw, b"f")
        h.grab(cw)
        h.core.disconnect(cw)
        assert h.take() == []
        assert h.admin(h.conn(), b"status") == b"f\t1\t0\t0\n.\n"


class TestCancel:
    def test_cancel_queued_job(self, h):
        c, adm = h.conn(), h.conn()
        h.submit(c, b"f", b"u")
        h.core.admin(adm, b"cancel job H:vm:1", True)
        acts = h.take()
        assert [(a.conn, a.data) for a in acts] == [
            (c, b"\x00RES\x00\x00\x00\x0e\x00\x00\x00\x06H:vm:1"), (adm, b"OK\r\n")]
        assert h.admin(adm, b"show jobs") == b"H:vm:1\t0\t1\t0\n.\n"
        assert h.admin(adm, b"cancel job H:vm:1") == b"OK\r\n"
        assert h.admin(adm, b"status") == b"f\t1\t0\t0\n.\n"
        # no longer a coalescing target
        assert h.submit(c, b"f", b"u") == b"H:vm:2"
        w = h.worker(b"f")
        assert h.grab_handle(w) == b"H:vm:2"
        assert h.admin(adm, b"status") == b"f\t1\t1\t1\n.\n"

    def test_cancel_background_job_clears_queued_flag(self, h):
        b = h.conn()
        h.submit(b, b"f", ptype=T.SUBMIT_JOB_BG)
        assert h.admin(b, b"show jobs") == b"H:vm:1\t0\t0\t1\n.\n"
        assert h.admin(b, b"cancel job H:vm:1") == b"OK\r\n"
        assert h.admin(b, b"show jobs") == b"H:vm:1\t0\t1\t0\n.\n"

    def test_cancel_running_job_worker_may_finish(self, h):
        c, w = h.conn(), h.worker(b"f")
        h.submit(c, b"f")
        h.grab(w)
        adm = h.conn()
        h.core.admin(adm, b"cancel job H:vm:1", True)
        assert [a.conn for a in h.take()] == [c, adm]
        assert h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"r") == []   # client already failed
        assert h.core.jobs.jobs == {}

    @pytest.mark.parametrize("line, reply", [
        (b"cancel job H:vm:999", b"ERR UNKNOWN_JOB\r\n"),
        (b"CANCEL JOB H:vm:999", b"ERR UNKNOWN_JOB\r\n"),
        (b"cancel job a b", b"ERR UNKNOWN_ERROR\r\n"),
        (b"cancel x y", b"ERR UNKNOWN_ERROR\r\n"),
        (b"cancel job", b"ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n"),
        (b"cancel", b"ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n"),
    ])
    def test_cancel_argument_rules(self, h, line, reply):
        assert h.admin(h.conn(), line) == reply


def _fail_reasons_client(h):
    c = h.conn()
    assert got(h.send(c, T.OPTION_REQ, b"fail_reasons"), c) == [(T.OPTION_RES, b"fail_reasons")]
    return c


def test_fail_reasons_warns_before_the_fail_when_retries_run_out(make):
    h = make(job_retries=2)
    c = _fail_reasons_client(h)
    h.submit(c, b"f")
    for _ in range(2):
        w = h.worker(b"f")
        h.grab(w)
        h.core.disconnect(w)
    acts = h.take()
    assert got(acts, c) == [
        (T.WORK_WARNING, b"H:vm:1\x00retries exhausted after 2 attempts: worker lost"),
        (T.WORK_FAIL, b"H:vm:1")]


def test_fail_reasons_names_the_timeout_and_a_plain_client_sees_only_the_fail(make):
    h = make(job_retries=1)
    c, plain = _fail_reasons_client(h), h.conn()
    h.submit(c, b"f", unique=b"u")
    h.submit(plain, b"f", unique=b"u")                          # coalesced onto H:vm:1
    w = h.worker(b"f")
    h.send(w, T.CAN_DO_TIMEOUT, b"f", b"1000")
    h.grab(w)
    h.clock.advance(2)
    _, acts = h.tick()
    assert got(acts, c) == [
        (T.WORK_WARNING, b"H:vm:1\x00retries exhausted after 1 attempts: CAN_DO_TIMEOUT expired"),
        (T.WORK_FAIL, b"H:vm:1")]
    assert got(acts, plain) == [(T.WORK_FAIL, b"H:vm:1")]


def test_fail_reasons_leaves_a_worker_work_fail_bare(h):
    c, w = _fail_reasons_client(h), h.worker(b"f")
    h.submit(c, b"f")
    h.grab(w)
    assert got(h.send(w, T.WORK_FAIL, b"H:vm:1"), c) == [(T.WORK_FAIL, b"H:vm:1")]
