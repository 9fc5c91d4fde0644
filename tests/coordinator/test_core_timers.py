"""Clock-driven behaviour: CAN_DO_TIMEOUT deadlines (PROTOCOL.md 3.11) and
SUBMIT_JOB_EPOCH (3.14), including the gearmand bugs we fix (6 items 1, 3)."""
import pytest

from corekit import T, T0, got, types

NOOP = b"\x00RES\x00\x00\x00\x06\x00\x00\x00\x00"
NOT_FOUND_RESULT = b"JOB_NOT_FOUND\x00Job given in work result not found"


def timeout_worker(h, fn=b"f", ms=b"1500"):
    w = h.conn()
    assert h.send(w, T.CAN_DO_TIMEOUT, fn, ms) == []
    return w


class TestCanDoTimeout:
    def test_expiry_requeues_like_worker_loss(self, h):
        c = h.conn()
        w = timeout_worker(h)
        h.submit(c, b"f")
        assert h.grab_handle(w) == b"H:vm:1"
        assert h.tick() == (1.5, [])
        h.clock.advance(1.4)
        assert h.tick()[1] == []
        h.clock.advance(0.2)
        delay, acts = h.tick()
        assert (delay, acts) == (None, [])                 # client told nothing
        assert h.admin(c, b"show jobs") == b"H:vm:1\t1\t0\t0\n.\n"
        assert h.admin(c, b"status") == b"f\t1\t0\t1\n.\n"
        assert got(h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"late"), w) == [
            (T.ERROR, NOT_FOUND_RESULT)]
        assert h.grab_handle(w) == b"H:vm:1"

    def test_short_timeouts_are_raised_to_one_second(self, h):
        c = h.conn()
        w = timeout_worker(h, ms=b"10")
        h.submit(c, b"f")
        h.grab(w)
        assert h.tick()[0] == 1.0

    @pytest.mark.parametrize("ms", [b"0", b"abc", b"-5", b""])
    def test_zero_or_non_numeric_means_no_timeout(self, h, ms):
        c = h.conn()
        w = timeout_worker(h, ms=ms)
        h.submit(c, b"f")
        assert h.grab_handle(w) == b"H:vm:1"
        assert h.tick() == (None, [])

    @pytest.mark.parametrize("ms", [b"1" * 21, b"9223372036854775807", b"99999999999999999999"])
    def test_too_long_or_overflowing_timeout_ignored(self, h, ms):
        w = timeout_worker(h, ms=ms)
        assert h.admin(w, b"workers") == b"38 127.0.0.1 - :\n.\n"
        assert h.admin(w, b"status") == b".\n"

    def test_completion_cancels_the_deadline(self, h):
        c = h.conn()
        w = timeout_worker(h)
        h.submit(c, b"f")
        h.grab(w)
        h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"r")
        assert h.tick() == (None, [])
        h.submit(c, b"f")             # a new job must not inherit the old timer
        h.clock.advance(1.0)
        h.grab(w)
        h.clock.advance(1.0)
        assert h.tick() == (0.5, [])
        assert h.admin(c, b"show jobs") == b"H:vm:2\t0\t0\t0\n.\n"

    def test_one_deadline_per_job(self, h):
        c = h.conn()
        w = timeout_worker(h, ms=b"2000")
        h.submit(c, b"f")
        h.grab(w)
        h.clock.advance(1.0)
        h.submit(c, b"f")
        h.grab(w)
        h.clock.advance(1.0)
        h.tick()
        assert h.admin(c, b"show jobs") == b"H:vm:1\t1\t0\t0\nH:vm:2\t0\t0\t0\n.\n"
        h.clock.advance(1.0)
        h.tick()
        assert h.admin(c, b"show jobs") == b"H:vm:1\t1\t0\t0\nH:vm:2\t1\t0\t0\n.\n"

    def test_pre_sleep_does_not_cancel_running_deadline(self, h):
        c = h.conn()
        w = timeout_worker(h)
        h.submit(c, b"f")
        h.grab(w)
        h.send(w, T.PRE_SLEEP)
        h.clock.advance(2)
        h.tick()
        assert h.admin(c, b"show jobs") == b"H:vm:1\t1\t0\t0\n.\n"

    def test_expiry_with_retry_limit_fails_the_job(self, make):
        h = make(job_retries=1)
        c = h.conn()
        w = timeout_worker(h)
        h.submit(c, b"f")
        h.grab(w)
        h.clock.advance(2)
        _, acts = h.tick()
        assert got(acts, c) == [(T.WORK_FAIL, b"H:vm:1")]
        assert h.core.jobs.jobs == {}

    def test_expiry_wakes_sleepers(self, h):
        c, sleeper = h.conn(), h.worker(b"f")
        w = timeout_worker(h)
        h.submit(c, b"f")
        h.grab(w)
        h.send(sleeper, T.PRE_SLEEP)
        h.clock.advance(2)
        _, acts = h.tick()
        assert [(a.conn, a.data) for a in acts] == [(sleeper, NOOP)]

    def test_newest_registration_timeout_applies(self, h):
        c = h.conn()
        w = timeout_worker(h, ms=b"5000")
        h.send(w, T.CAN_DO, b"f")
        h.submit(c, b"f")
        h.grab(w)
        assert h.tick() == (None, [])

    def test_dead_deadlines_are_compacted(self, h):
        c = h.conn()
        w = timeout_worker(h, ms=b"60000")
        for i in range(1000):
            h.submit(c, b"f")
            handle = h.grab_handle(w)
            h.send(w, T.WORK_COMPLETE, handle, b"")
        assert len(h.core.deadlines.heap) < 200
        assert len(h.core.deadlines) == 0


class TestEpoch:
    def epoch(self, h, c, when, fn=b"f", unique=b"", data=b"later"):
        acts = h.send(c, T.SUBMIT_JOB_EPOCH, fn, unique, b"%d" % when, data)
        return acts

    def test_future_job_not_given_and_no_noop(self, h):
        c, w = h.conn(), h.worker(b"f", sleep=True)
        acts = self.epoch(h, c, T0 + 10)
        assert [a.conn for a in acts] == [c]                # JOB_CREATED only, no NOOP
        assert h.grab(w) == (T.NO_JOB, b"")
        assert h.send(w, T.PRE_SLEEP) == []                 # no NOOP/NO_JOB busy loop
        assert h.admin(c, b"status") == b"f\t1\t0\t1\n.\n"
        assert h.admin(c, b"prioritystatus") == b"f\t0\t1\t0\t1\n.\n"
        assert h.admin(c, b"show jobs") == b"H:vm:1\t0\t0\t1\n.\n"

    def test_scheduled_lists_the_future_jobs_apart(self, h):
        """Ours: `scheduled` counts the epoch jobs waiting outside the queue,
        per function, until they are due."""
        c = h.conn()
        assert h.admin(c, b"scheduled") == b".\n"
        self.epoch(h, c, T0 + 10)
        self.epoch(h, c, T0 + 20, fn=b"g\n")
        h.submit(c, b"f")
        assert sorted(h.admin(c, b"scheduled").split(b"\n")) == [
            b"", b".", b"f\t1", b"g\\x0a\t1"]
        h.clock.advance(10)
        h.tick()
        assert h.admin(c, b"scheduled") == b"g\\x0a\t1\n.\n"

    def test_due_job_wakes_sleepers(self, h):
        c = h.conn()
        w1, w2 = h.worker(b"f", sleep=True), h.worker(b"f", sleep=True)
        self.epoch(h, c, T0 + 10)
        assert h.tick() == (10.0, [])
        h.clock.advance(9.5)
        assert h.tick() == (0.5, [])
        h.clock.advance(0.5)
        delay, acts = h.tick()
        assert delay is None
        assert [(a.conn, a.data) for a in acts] == [(w1, NOOP), (w2, NOOP)]
        assert h.grab(w1, T.GRAB_JOB_UNIQ) == (T.JOB_ASSIGN_UNIQ, b"H:vm:1\x00f\x00\x00later")

    def test_due_job_given_on_grab_even_before_tick(self, h):
        c, w = h.conn(), h.worker(b"f")
        self.epoch(h, c, T0 + 5)
        h.clock.advance(5)
        assert h.grab_handle(w) == b"H:vm:1"

    def test_future_job_does_not_block_other_priorities(self, h):
        c, w = h.conn(), h.worker(b"f")
        self.epoch(h, c, T0 + 100)
        h.submit(c, b"f", b"low", ptype=T.SUBMIT_JOB_LOW)
        h.submit(c, b"f", b"normal")
        assert h.send(w, T.PRE_SLEEP)[0].data == NOOP
        assert [h.grab_handle(w) for _ in range(3)] == [b"H:vm:3", b"H:vm:2", None]

    def test_past_or_non_numeric_epoch_runs_now(self, h):
        c, w = h.conn(), h.worker(b"f", sleep=True)
        acts = self.epoch(h, c, T0 - 100)
        assert [a.conn for a in acts] == [w, c]
        acts = h.send(c, T.SUBMIT_JOB_EPOCH, b"f", b"", b"soon", b"x")
        assert types(acts, c) == [T.JOB_CREATED]
        assert [h.grab_handle(w) for _ in range(3)] == [b"H:vm:1", b"H:vm:2", None]

    def test_overflowing_epoch_drops_connection(self, h):
        c = h.conn()
        acts = h.send(c, T.SUBMIT_JOB_EPOCH, b"f", b"", b"99999999999999999999", b"x")
        assert got(acts, c) == [("close", None)]
        assert h.core.jobs.jobs == {} and c not in h.core.conns

    def test_epoch_unique_too_large(self, h):
        c = h.conn()
        acts = h.send(c, T.SUBMIT_JOB_EPOCH, b"f", b"u" * 65, b"1", b"x")
        assert got(acts, c) == [(T.ERROR, b"ARGUMENT_TOO_LARGE\x00Unique value too large")]

    def test_epoch_jobs_coalesce_and_are_background(self, h):
        c, fg = h.conn(), h.conn()
        self.epoch(h, c, T0 + 10, unique=b"ep-1")
        assert types(self.epoch(h, c, T0 + 20, unique=b"ep-1"), c) == [T.JOB_CREATED]
        assert h.submit(fg, b"f", b"ep-1") == b"H:vm:1"
        h.core.disconnect(fg)
        h.clock.advance(10)
        h.tick()
        w = h.worker(b"f")
        assert h.grab_handle(w) == b"H:vm:1"

    def test_epoch_order_and_cancelled_epoch_job(self, h):
        c, w = h.conn(), h.worker(b"f")
        self.epoch(h, c, T0 + 30, data=b"c")
        self.epoch(h, c, T0 + 10, data=b"a")
        self.epoch(h, c, T0 + 20, data=b"b")
        assert h.admin(c, b"cancel job H:vm:3") == b"OK\r\n"
        h.clock.advance(40)
        h.tick()
        assert [h.grab_handle(w) for _ in range(3)] == [b"H:vm:2", b"H:vm:1", None]

    def test_tick_reports_nearest_of_epoch_and_deadline(self, h):
        c = h.conn()
        self.epoch(h, c, T0 + 10)
        w = timeout_worker(h, fn=b"g", ms=b"3000")
        h.submit(c, b"g")
        h.grab(w)
        assert h.tick()[0] == 3.0


class TestTimeoutLogs:
    """A timeout, a requeue and a failure after the retries are logged at
    INFO naming the job and its function; a lost worker's requeue is DEBUG."""

    def test_timeout_requeue_is_logged(self, make, caplog):
        h = make(job_retries=3)
        c = h.conn()
        w = timeout_worker(h, fn=b"resize\n")
        h.submit(c, b"resize\n")
        h.grab(w)
        h.clock.advance(2)
        with caplog.at_level("INFO", logger="mpgearman.coordinator.core"):
            h.tick()
        assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
            ("INFO", "job H:vm:1 of function resize\\n requeued: it timed out on its "
                     "worker (after attempt 1 of 3)")]

    def test_failure_after_the_retries_is_logged(self, make, caplog):
        h = make(job_retries=2)
        c = h.conn()
        w = timeout_worker(h)
        h.submit(c, b"f")
        with caplog.at_level("INFO", logger="mpgearman.coordinator.core"):
            for _ in range(2):
                h.grab(w)
                h.clock.advance(2)
                h.tick()
        assert [r.getMessage() for r in caplog.records] == [
            "job H:vm:1 of function f requeued: it timed out on its worker "
            "(after attempt 1 of 2)",
            "job H:vm:1 of function f failed: timed out on its worker after 2 attempts "
            "(job-retries 2)"]
        assert all(r.levelname == "INFO" for r in caplog.records)

    def test_a_lost_workers_requeue_is_debug_and_its_failure_info(self, make, caplog):
        h = make(job_retries=2)
        c = h.conn()
        h.submit(c, b"f")
        with caplog.at_level("DEBUG", logger="mpgearman.coordinator.core"):
            for _ in range(2):
                w = h.worker(b"f")
                h.grab(w)
                h.core.disconnect(w)
        assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
            ("DEBUG", "job H:vm:1 of function f requeued: its worker went away "
                      "(after attempt 1 of 2)"),
            ("INFO", "job H:vm:1 of function f failed: its worker went away after 2 "
                     "attempts (job-retries 2)")]
