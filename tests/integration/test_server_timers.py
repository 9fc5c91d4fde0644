"""Timers run in the coordinator's loop: a due epoch job wakes a sleeping
worker, and an expired CAN_DO_TIMEOUT requeues the job, on a real server."""
import time

from gearproto import PacketType as T


def test_due_epoch_job_wakes_a_sleeping_worker(mpgearman_server, fname):
    srv, f = mpgearman_server, fname.encode()
    with srv.connect() as w, srv.connect() as c:
        w.send_packet(T.CAN_DO, f)
        w.send_packet(T.GRAB_JOB)
        w.expect(T.NO_JOB)
        when = int(time.time()) + 2
        c.send_packet(T.SUBMIT_JOB_EPOCH, f, b"", b"%d" % when, b"later")
        handle = c.expect(T.JOB_CREATED).payload
        c.submit(T.SUBMIT_JOB_LOW, f, b"", b"now")          # not starved by the epoch job
        w.send_packet(T.GRAB_JOB)
        assert w.expect(T.JOB_ASSIGN).payload.endswith(b"\0now")
        w.send_packet(T.GRAB_JOB)
        w.expect(T.NO_JOB)
        w.send_packet(T.PRE_SLEEP)
        w.assert_silent(0.5)                                 # nothing is due yet
        w.expect(T.NOOP, timeout=5)
        assert time.time() >= when - 0.05
        w.send_packet(T.GRAB_JOB)
        w.expect(T.JOB_ASSIGN, handle + b"\0" + f + b"\0later")


def test_can_do_timeout_requeues_a_slow_job(mpgearman_server, fname):
    srv, f = mpgearman_server, fname.encode()
    with srv.connect() as slow, srv.connect() as c:
        slow.send_packet(T.CAN_DO_TIMEOUT, f, b"1000")
        handle = c.submit(T.SUBMIT_JOB, f, b"", b"x")
        slow.send_packet(T.GRAB_JOB)
        slow.expect(T.JOB_ASSIGN)
        started = time.monotonic()
        with srv.connect() as fast:
            fast.send_packet(T.CAN_DO, f)
            fast.send_packet(T.PRE_SLEEP)
            fast.expect(T.NOOP, timeout=5)                   # woken by the requeue
            assert time.monotonic() - started >= 0.9
            fast.send_packet(T.GRAB_JOB)
            fast.expect(T.JOB_ASSIGN, handle + b"\0" + f + b"\0x")
            assert b"\t1\t0\t0\n" in srv.admin("show jobs")  # one retry counted
            slow.send_packet(T.WORK_COMPLETE, handle, b"late")
            slow.expect(T.ERROR, b"JOB_NOT_FOUND\0Job given in work result not found")
            fast.send_packet(T.WORK_COMPLETE, handle, b"ok")
            c.expect(T.WORK_COMPLETE, handle + b"\0ok")
