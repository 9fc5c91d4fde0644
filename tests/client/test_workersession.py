"""workersession.py and workerjob.py: the worker side without sockets."""
import io
import tempfile

import pytest

from mpgearman.client.errors import WorkFailed
from mpgearman.client.registry import FunctionRegistry
from mpgearman.client.workerjob import (WorkerJob, deliver, outcome_of_exception,
                                        outcome_of_return)
from mpgearman.client.workersession import PROBE_EVERY, WorkerSession
from mpgearman.protocol.encoder import encode, request
from mpgearman.protocol.events import Packet
from mpgearman.protocol.packets import PacketType as T

from test_session import sent


def make(threshold=1 << 20, **functions):
    spools = []

    def spool():
        spools.append(tempfile.TemporaryFile())
        return spools[-1]
    session = WorkerSession("s:1", functions or {"rev": None}, "w1", threshold, spool)
    return session, spools


def test_start_registers_functions_and_client_id():
    session, _ = make(rev=None, slow=2.5)
    assert sent(session) == [Packet(T.SET_CLIENT_ID, (b"w1",)), Packet(T.CAN_DO, (b"rev",)),
                             Packet(T.CAN_DO_TIMEOUT, (b"slow", b"2500"))]


def test_grab_sleep_wake_cycle():
    session, _ = make()
    sent(session)
    assert session.ready
    session.grab()
    assert sent(session) == [Packet(T.GRAB_JOB_UNIQ, ())] and not session.ready
    assert session.receive(encode(T.NO_JOB)) == []
    assert sent(session) == [Packet(T.PRE_SLEEP, ())] and session.state == "sleeping"
    session.receive(encode(T.NOOP))
    assert session.ready
    session.grab()
    [job] = session.receive(encode(T.JOB_ASSIGN_UNIQ, b"H:1", b"rev", b"u", b"da\0ta"))
    assert (job.handle, job.function, job.unique, job.data) == ("H:1", "rev", "u", b"da\0ta")
    assert session.ready


def assign(session, handle):
    return session.receive(encode(T.JOB_ASSIGN_UNIQ, handle, b"rev", b"", b"x"))[0]


def finish(session, handle):
    deliver(session, handle, outcome_of_return(b"r"))
    session.ended(handle)


def test_job_ended_with_none_in_hand_sleeps_in_the_same_send():
    # GRAB -> NO_JOB -> PRE_SLEEP after each job costs a round trip when
    # jobs come one at a time: the session sleeps right after the result.
    session, _ = make()
    sent(session)
    session.grab()
    assign(session, b"H:1")
    sent(session)
    finish(session, b"H:1")
    assert session.output() == request(T.WORK_COMPLETE, b"H:1", b"r") + request(T.PRE_SLEEP)
    assert session.state == "sleeping" and not session.ready
    session.receive(encode(T.NOOP))
    assert session.ready


def test_no_sleep_while_another_job_is_in_hand():
    # gearmand's PRE_SLEEP cancels the connection's CAN_DO_TIMEOUT timer.
    session, _ = make(rev=5.0)
    sent(session)
    for handle in (b"H:1", b"H:2"):
        session.grab()
        assign(session, handle)
    sent(session)
    finish(session, b"H:1")
    assert sent(session) == [Packet(T.WORK_COMPLETE, (b"H:1", b"r"))]
    assert session.ready
    finish(session, b"H:2")
    assert sent(session)[-1] == Packet(T.PRE_SLEEP, ())
    session.ended(b"H:9")               # not in hand (a dropped overrun twice)
    assert sent(session) == [] and session.state == "sleeping"


def test_no_sleep_when_a_grab_is_in_flight():
    session, _ = make()
    session.grab()
    assign(session, b"H:1")
    session.grab()
    sent(session)
    finish(session, b"H:1")
    assert sent(session) == [Packet(T.WORK_COMPLETE, (b"H:1", b"r"))]
    assert session.state == "grabbing"


def wake_and_run(session, handle):
    session.receive(encode(T.NOOP))
    session.grab()
    assign(session, handle)
    sent(session)
    finish(session, handle)
    return sent(session)


def test_probe_grab_switches_to_grabbing_while_jobs_wait():
    session, _ = make()
    session.grab()
    session.receive(encode(T.NO_JOB))
    sent(session)
    for n in range(PROBE_EVERY - 1):
        assert wake_and_run(session, b"H:%d" % n)[-1] == Packet(T.PRE_SLEEP, ())
    # Every PROBE_EVERY-th job, a GRAB finds out whether jobs are waiting.
    assert wake_and_run(session, b"H:p") == [Packet(T.WORK_COMPLETE, (b"H:p", b"r"))]
    assert session.ready
    for n in range(3):              # they are: grab after each job
        session.grab()
        assign(session, b"H:b%d" % n)
        finish(session, b"H:b%d" % n)
        assert sent(session) == [Packet(T.GRAB_JOB_UNIQ, ()),
                                 Packet(T.WORK_COMPLETE, (b"H:b%d" % n, b"r"))]
        assert session.ready
    session.grab()
    session.receive(encode(T.NO_JOB))   # the queue is empty again
    assert sent(session)[-1] == Packet(T.PRE_SLEEP, ())
    assert wake_and_run(session, b"H:s")[-1] == Packet(T.PRE_SLEEP, ())


def test_probe_that_finds_no_job_keeps_sleeping_after_jobs():
    session, _ = make()
    for n in range(PROBE_EVERY - 1):
        wake_and_run(session, b"H:%d" % n)
    assert wake_and_run(session, b"H:p")[-1] == Packet(T.WORK_COMPLETE, (b"H:p", b"r"))
    session.grab()
    session.receive(encode(T.NO_JOB))
    assert sent(session) == [Packet(T.GRAB_JOB_UNIQ, ()), Packet(T.PRE_SLEEP, ())]
    assert wake_and_run(session, b"H:n")[-1] == Packet(T.PRE_SLEEP, ())


def test_big_payload_is_spooled_not_held():
    session, spools = make(threshold=4096)
    session.grab()
    body = bytes(range(256)) * 20000
    wire = encode(T.JOB_ASSIGN_UNIQ, b"H:2", b"rev", b"", body)
    jobs = []
    for i in range(0, len(wire), 50000):
        jobs += session.receive(wire[i:i + 50000])
    [assignment] = jobs
    assert assignment.file is spools[0] and assignment.size == len(body)
    job = WorkerJob(assignment, lambda cb: None)
    with job.open() as f:
        assert f.read(10) == body[:10]
    assert job.data == body
    job.release()


def test_job_sends_and_outcomes_are_packets():
    session, _ = make()
    sent(session)
    assignment = session.receive(encode(T.JOB_ASSIGN_UNIQ, b"H:3", b"rev", b"", b"x"))[0]
    job = WorkerJob(assignment, lambda cb: cb(session))
    job.send_data("d")
    job.send_warning(b"w")
    job.send_status(2, 5)
    deliver(session, job.raw_handle, outcome_of_return("done"))
    deliver(session, b"H:4", outcome_of_exception(WorkFailed(), job))
    deliver(session, b"H:5", outcome_of_exception(ValueError("bad\nthing"), job))
    deliver(session, b"H:6", outcome_of_return(None))
    deliver(session, b"H:7", outcome_of_return(io.BytesIO(b"from a file")))
    deliver(session, b"H:8", outcome_of_return(42))
    deliver(session, b"H:9", outcome_of_exception(WorkFailed("no such\nuser"), job))
    packets = sent(session)
    assert packets[9:] == [Packet(T.WORK_WARNING, (b"H:9", b"WorkFailed: no such user")),
                           Packet(T.WORK_FAIL, (b"H:9",))]
    assert packets[:7] == [
        Packet(T.WORK_DATA, (b"H:3", b"d")), Packet(T.WORK_WARNING, (b"H:3", b"w")),
        Packet(T.WORK_STATUS, (b"H:3", b"2", b"5")), Packet(T.WORK_COMPLETE, (b"H:3", b"done")),
        Packet(T.WORK_FAIL, (b"H:4",)),
        Packet(T.WORK_EXCEPTION, (b"H:5", b"ValueError: bad thing")),
        Packet(T.WORK_COMPLETE, (b"H:6", b""))]
    assert packets[7] == Packet(T.WORK_COMPLETE, (b"H:7", b"from a file"))
    assert packets[8].type == T.WORK_EXCEPTION and b"TypeError" in packets[8].args[1]


def test_registry_checks():
    reg = FunctionRegistry()

    @reg.function("a", timeout=3)
    def a(job):
        return b""
    assert reg.timeouts() == {"a": 3} and reg.lookup("a") is a
    from mpgearman.client.errors import GearmanError
    for bad in (("", a), ("b", 5), ("c\0", a)):
        with pytest.raises(GearmanError):
            reg.register(*bad)
    with pytest.raises(GearmanError):
        reg.register("d", a, timeout=-1)


def test_result_bigger_than_a_packet_goes_as_work_data_parts():
    session, _ = make()
    sent(session)
    session.part_size = 4
    deliver(session, b"H:1", outcome_of_return(b"0123456789"))
    assert sent(session) == [Packet(T.WORK_DATA, (b"H:1", b"0123")),
                             Packet(T.WORK_DATA, (b"H:1", b"4567")),
                             Packet(T.WORK_COMPLETE, (b"H:1", b"89"))]
