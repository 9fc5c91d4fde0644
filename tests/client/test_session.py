"""session.py and failover.py: replies matched to jobs and requests, with
no sockets: bytes a server would send are fed in, output is decoded."""
import pytest

from mpgearman.client.errors import (JobException, JobFailed, ProtocolError,
                                     ServerUnavailable)
from mpgearman.client.failover import lost_connection
from mpgearman.client.jobs import JobStatus, WorkData, WorkStatus, WorkWarning
from mpgearman.client.servers import ServerPool
from mpgearman.client.session import Session
from mpgearman.client.submit import new_job
from mpgearman.protocol.decoder import Decoder
from mpgearman.protocol.encoder import encode
from mpgearman.protocol.events import NEED_DATA, Packet
from mpgearman.protocol.packets import PacketType as T


def sent(session):
    """Decode everything the session wants to send, as a server would."""
    wire = b""
    while (chunk := session.output()) is not None:
        wire += bytes(chunk)
    dec = Decoder((1 << 32) - 1, 1 << 30)
    dec.feed(wire)
    out = []
    while (event := dec.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def feed(session, *packets):
    session.receive(b"".join(encode(t, *args) for t, *args in packets))


def fresh():
    session = Session("s:1")
    assert sent(session) == [Packet(T.OPTION_REQ, (b"exceptions",)),
                             Packet(T.OPTION_REQ, (b"fail_reasons",))]
    feed(session, (T.OPTION_RES, b"exceptions"), (T.OPTION_RES, b"fail_reasons"))
    assert session.exceptions and session.fail_reasons and not session.busy
    return session


@pytest.mark.parametrize("kwargs, ptype, args", [
    ({}, T.SUBMIT_JOB, (b"f", b"u", b"x")),
    ({"priority": "high"}, T.SUBMIT_JOB_HIGH, (b"f", b"u", b"x")),
    ({"priority": "low", "background": True}, T.SUBMIT_JOB_LOW_BG, (b"f", b"u", b"x")),
    ({"background": True}, T.SUBMIT_JOB_BG, (b"f", b"u", b"x")),
    ({"when": 1700000000.5}, T.SUBMIT_JOB_EPOCH, (b"f", b"u", b"1700000000", b"x")),
])
def test_submit_packet_types(kwargs, ptype, args):
    session = fresh()
    session.submit(new_job("f", b"x", unique="u", **kwargs))
    assert sent(session) == [Packet(ptype, args)]


def test_foreground_job_events_and_result():
    session = fresh()
    job = new_job("f", b"x")
    session.submit(job)
    feed(session, (T.JOB_CREATED, b"H:1"), (T.WORK_STATUS, b"H:1", b"1", b"4"),
         (T.WORK_DATA, b"H:1", b"d"), (T.WORK_WARNING, b"H:1", b"w"))
    assert job.created and job.handle == "H:1" and job.server == "s:1" and not job.done
    feed(session, (T.WORK_COMPLETE, b"H:1", b"res"))
    assert job.done and job.result == b"res"
    assert list(job.events) == [WorkStatus(1, 4), WorkData(b"d"), WorkWarning(b"w")]
    assert not session.busy


def test_pipelined_submissions_match_in_order_and_results_by_handle():
    session = fresh()
    jobs = [new_job("f", str(i)) for i in range(3)]
    for job in jobs:
        session.submit(job)
    feed(session, (T.JOB_CREATED, b"H:a"), (T.JOB_CREATED, b"H:b"),
         (T.WORK_COMPLETE, b"H:b", b"B"), (T.JOB_CREATED, b"H:c"),
         (T.WORK_FAIL, b"H:c"), (T.WORK_EXCEPTION, b"H:a", b"ValueError: no"))
    assert [j.handle for j in jobs] == ["H:a", "H:b", "H:c"]
    assert jobs[1].result == b"B"
    assert isinstance(jobs[2].error, JobFailed)
    assert isinstance(jobs[0].error, JobException) and jobs[0].error.message == "ValueError: no"


def test_same_unique_twice_on_one_connection_gets_each_copy_once():
    session = fresh()
    a, b = new_job("f", b"x", unique="u"), new_job("f", b"x", unique="u")
    session.submit(a)
    session.submit(b)
    feed(session, (T.JOB_CREATED, b"H:1"), (T.JOB_CREATED, b"H:1"),
         (T.WORK_DATA, b"H:1", b"d"), (T.WORK_DATA, b"H:1", b"d"),
         (T.WORK_COMPLETE, b"H:1", b"r"), (T.WORK_COMPLETE, b"H:1", b"r"))
    for job in (a, b):
        assert job.result == b"r" and list(job.events) == [WorkData(b"d")]


def test_exception_turned_into_fail_with_trailing_nul():
    session = fresh()
    job = new_job("f")
    session.submit(job)
    feed(session, (T.JOB_CREATED, b"H:9"), (T.WORK_FAIL, b"H:9\0"))
    assert isinstance(job.error, JobFailed)


def test_error_reply_fails_the_submission():
    session = fresh()
    job = new_job("f")
    req = session.submit(job)
    feed(session, (T.ERROR, b"QUEUE_ERROR", b"Job queue is full"))
    assert isinstance(job.error, ProtocolError) and job.error.code == "QUEUE_ERROR"
    assert str(job.error) == "QUEUE_ERROR: Job queue is full" and req.done


def test_status_echo_and_crossing_replies():
    session = fresh()
    st = session.status("H:1")
    su = session.status_unique("u")
    echo = session.echo(b"ping")
    feed(session, (T.ECHO_RES, b"ping"),
         (T.STATUS_RES_UNIQUE, b"u", b"1", b"1", b"3", b"9", b"2"),
         (T.STATUS_RES, b"H:1", b"1", b"0", b"0", b"0"))
    assert echo.value == b"ping"
    assert su.value == JobStatus(True, True, 3, 9, 2)
    assert st.value == JobStatus(True, False, 0, 0)


def test_streamed_result_goes_to_the_sink_in_chunks():
    session = fresh()
    job = new_job("f")
    session.submit(job)
    got = []
    job.start_sink(got.append)
    big = bytes(range(256)) * 10000       # above the 1 MiB stream threshold
    wire = (encode(T.JOB_CREATED, b"H:1") + encode(T.WORK_DATA, b"H:1", big)
            + encode(T.WORK_COMPLETE, b"H:1", big))
    for i in range(0, len(wire), 65536):
        session.receive(wire[i:i + 65536])
    assert job.done and job.result == 2 * len(big)
    assert b"".join(got) == big + big and len(got) > 2


def test_garbage_from_server_is_a_protocol_error():
    session = fresh()
    with pytest.raises(ProtocolError):
        session.receive(b"\0RES\0\0\0\x07\0\0\0\0")     # SUBMIT_JOB from a server


def test_lost_connection_policy():
    pool = ServerPool("s:1,t:1")
    session = fresh()
    unacked, created, done_bg = new_job("f"), new_job("f", unique="k"), new_job("f", background=True)
    spent = new_job("f")
    for job in (done_bg, created, spent, unacked):
        session.submit(job)
        job.placements = 1
    spent.resubmissions = 3
    echo = session.echo(b"x")
    feed(session, (T.JOB_CREATED, b"H:bg"), (T.JOB_CREATED, b"H:k"),
         (T.JOB_CREATED, b"H:s"))
    again = lost_connection(session, pool, 3, "connection reset")
    assert again == [unacked, created] and created.resubmissions == 1
    assert isinstance(spent.error, ServerUnavailable) and "s:1" in str(spent.error)
    assert done_bg.done and done_bg.error is None
    assert isinstance(echo.error, ServerUnavailable)
    assert not pool.is_up("s:1") and not session.busy


def test_job_cut_off_mid_result_is_handed_back_on_loss():
    session = fresh()
    job = new_job("f", unique="cut")
    session.submit(job)
    big = encode(T.WORK_COMPLETE, b"H:1", b"x" * (2 << 20))
    session.receive(encode(T.JOB_CREATED, b"H:1") + big[:100000])
    unacked, created, others = session.lost()
    assert created == [job] and not job.done


def test_when_accepts_datetimes_and_unix_times():
    import datetime
    aware = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert new_job("f", when=aware).when == int(aware.timestamp())
    naive = datetime.datetime(2030, 1, 2, 3, 4, 5)
    assert new_job("f", when=naive).when == int(naive.astimezone().timestamp())
    assert new_job("f", when=1893456000.9).when == 1893456000
    job = new_job("f", when=0)
    assert job.background and job.when == 0


from hypothesis import given, settings
from hypothesis import strategies as st

_TYPES = [T.JOB_CREATED, T.WORK_DATA, T.WORK_COMPLETE, T.WORK_FAIL, T.WORK_STATUS,
          T.WORK_EXCEPTION, T.ECHO_RES, T.ERROR, T.STATUS_RES, T.OPTION_RES,
          T.NOOP, T.STATUS_RES_UNIQUE, T.JOB_ASSIGN]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_TYPES),
                          st.lists(st.sampled_from([b"H:1", b"H:2", b"1", b"x", b""]),
                                   max_size=6)), max_size=12))
def test_any_server_packets_end_in_outcomes_or_a_protocol_error(packets):
    """Whatever a server sends, the session either copes or raises the
    client's ProtocolError; lost() then settles every job."""
    session = fresh()
    jobs = [new_job("f", b"x", unique="u"), new_job("f", b"y")]
    for job in jobs:
        session.submit(job)
    try:
        for ptype, args in packets:
            session.receive(encode(ptype, *args))
    except ProtocolError:
        pass
    unacked, created, _ = session.lost()
    for job in jobs:
        assert job.done or job in unacked or job in created
