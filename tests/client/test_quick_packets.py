"""wire.quick_packets, the worker's short cut around the decoder: whatever
it takes decodes exactly as the decoder would, and it leaves the rest
(and every error) to the decoder."""
import pytest

from mpgearman.client.errors import ProtocolError
from mpgearman.client.session import Session
from mpgearman.client.submit import new_job
from mpgearman.client.jobs import WorkData, WorkStatus
from mpgearman.client.wire import STREAM_THRESHOLD, quick_packets, response_decoder
from mpgearman.client.workersession import WorkerSession
from mpgearman.protocol.encoder import encode
from mpgearman.protocol.events import NEED_DATA, Packet
from mpgearman.protocol.packets import HEADER, MAX_ARGS_BYTES, REQ
from mpgearman.protocol.packets import PacketType as T

KINDS = frozenset({T.NOOP, T.NO_JOB, T.JOB_ASSIGN_UNIQ, T.JOB_CREATED, T.WORK_COMPLETE,
                   T.WORK_STATUS, T.WORK_FAIL, T.ERROR})
ASSIGN = encode(T.JOB_ASSIGN_UNIQ, b"H:h:1", b"rev", b"u1", b"da\0ta")


def decoded(data):
    """What the decoder makes of `data`: packets, then "need" or the error."""
    dec, out = response_decoder(), []
    dec.feed(data)
    try:
        while (event := dec.next_event()) is not NEED_DATA:
            out.append(event)
    except Exception as exc:          # noqa: BLE001 - compared below
        return out, type(exc).__name__
    return out, "need"


@pytest.mark.parametrize("wire", [
    encode(T.NOOP) + ASSIGN + encode(T.NO_JOB),
    ASSIGN + encode(T.NOOP, b"payload ignored") + encode(T.NO_JOB),
    encode(T.JOB_ASSIGN_UNIQ, b"H:1", b"rev", b""),              # missing data arg
    encode(T.JOB_ASSIGN_UNIQ, b"H:2", b"f", b"u", b"x" * (MAX_ARGS_BYTES + 5)),
    encode(T.JOB_ASSIGN_UNIQ, b"H" * MAX_ARGS_BYTES, b"f", b"u", b"x" * 10),
    encode(T.JOB_ASSIGN_UNIQ, b"H:3", b"f", b"u", b"x" * (STREAM_THRESHOLD + 1)),
    encode(T.JOB_ASSIGN, b"H:4", b"f", b"old"),
    encode(T.NOOP) + encode(T.NO_JOB)[:3] + b"X" + encode(T.NO_JOB)[4:],   # bad magic
    encode(T.NOOP) + encode(T.NO_JOB, magic=REQ),
    encode(T.NOOP) + HEADER.pack(b"\0RES", 99, 0),
    encode(T.ERROR, b"ERR", b"text") + encode(T.NOOP),
    encode(T.ERROR, b"ERR") + encode(T.NOOP),                       # missing arg
    encode(T.JOB_CREATED, b"H:5") + encode(T.WORK_COMPLETE, b"H:5", b"r\0x"),
    encode(T.JOB_CREATED, b"H" * (MAX_ARGS_BYTES + 1)),
    encode(T.WORK_STATUS, b"H:6", b"1", b"2\0x") + encode(T.WORK_FAIL, b"H:6"),
    encode(T.WORK_STATUS, b"H:6", b"1") + encode(T.NOOP),
    encode(T.ECHO_RES, b"echo") + encode(T.NOOP),                   # not in the set
])
def test_what_it_takes_decodes_as_the_decoder_does(wire):
    for cut in range(len(wire) + 1) if len(wire) < 200 else (0, 12, 40, len(wire)):
        packets, used = quick_packets(wire[:cut], KINDS)
        assert used <= cut
        expected, _ = decoded(wire[:used])
        assert [Packet(t, a) for t, a in packets] == expected
        # Taking a prefix changes nothing the decoder says about the rest.
        rest_events, rest_end = decoded(wire[used:cut])
        all_events, all_end = decoded(wire[:cut])
        assert expected + rest_events == all_events and rest_end == all_end


def test_the_session_decodes_the_common_packets_without_the_decoder(monkeypatch):
    session = WorkerSession("s:1", {"rev": None}, None, 1 << 20, lambda: None)
    session.grab()

    def feed(data):
        raise AssertionError("decoder used")
    monkeypatch.setattr(session.decoder, "feed", feed)
    session.receive(encode(T.NO_JOB))
    assert session.state == "sleeping"
    [job] = session.receive(encode(T.NOOP) + ASSIGN)
    assert (job.handle, job.function, job.unique, job.data) == ("H:h:1", "rev", "u1", b"da\0ta")


def test_the_session_hands_the_decoder_the_rest_and_its_errors():
    session = WorkerSession("s:1", {"rev": None}, None, 1 << 20, lambda: None)
    session.grab()
    wire = encode(T.NOOP) + ASSIGN
    assert session.receive(wire[:20]) == []            # NOOP taken, a part held
    [job] = session.receive(wire[20:])
    assert job.data == b"da\0ta"
    with pytest.raises(ProtocolError):
        session.receive(encode(T.NOOP) + encode(T.NO_JOB, magic=REQ))


def test_the_client_session_takes_a_job_s_replies_without_the_decoder(monkeypatch):
    session = Session("s:1")
    job = new_job("f", b"x", unique="u")
    session.submit(job)

    def feed(data):
        raise AssertionError("decoder used")
    monkeypatch.setattr(session.decoder, "feed", feed)
    session.receive(encode(T.JOB_CREATED, b"H:1") + encode(T.WORK_STATUS, b"H:1", b"1", b"2")
                    + encode(T.WORK_DATA, b"H:1", b"d\0") + encode(T.WORK_COMPLETE, b"H:1", b"r"))
    assert job.created and job.done and job.handle == "H:1"
    assert job.result == b"r"
    assert list(job.events) == [WorkStatus(1, 2), WorkData(b"d\0")]
