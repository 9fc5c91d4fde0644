"""A request whose handling raises costs only its connection: the loop logs
the traceback, answers ERROR (a binary request) or an ERR line (an admin
line), closes that connection and serves the others, in order.

The loop runs in this process over a real segment; the test plays the
acceptor by pushing inbound records and reading the outbound ring."""
import logging

import pytest

from mpgearman import native
from mpgearman.config import Config
from mpgearman.coordinator import admin, dispatch
from mpgearman.coordinator.loop import CoordinatorLoop
from mpgearman.ipc import messages
from mpgearman.ipc.board import StatusBoard
from mpgearman.ipc.control import Control
from mpgearman.ipc.doorbell import Doorbell
from mpgearman.ipc.shm import Segment
from mpgearman.protocol.encoder import encode, request
from mpgearman.protocol.packets import T


class Inbox(Doorbell):
    def take(self):
        return []


CORES = ["python", "c"] if native.core is not None else ["python"]


@pytest.fixture(params=CORES)
def loop(request, tmp_path, monkeypatch):
    """A loop over either core."""
    monkeypatch.setattr(native, "CORE", request.param)
    yield from _loop(tmp_path)


@pytest.fixture
def py_loop(tmp_path, monkeypatch):
    """A loop over the Python Core, whose handlers a test can break."""
    monkeypatch.setattr(native, "CORE", "python")
    yield from _loop(tmp_path)


def _loop(tmp_path):
    segment = Segment.create(1, 1 << 16)
    board = StatusBoard.create(1, 1024)
    bells = [Doorbell(), Doorbell(), Inbox()]
    ours, theirs = Control.pair()
    config = Config(spool_dir=str(tmp_path), job_handle_prefix="H:t")
    lp = CoordinatorLoop(config, segment, board, bells[0], [bells[1]], ours, bells[2],
                         pid=1, version=b"t")
    lp.attach(0)
    yield lp
    lp.close()
    for thing in (ours, theirs, *bells, board, segment):
        thing.close()


def turn(loop, *records) -> list:
    """Push records as acceptor 0 would, run one turn, return what came back
    as (kind, conn, bytes) in order."""
    assert loop.rings_in[0].push_many(list(records)) == len(records)
    loop._drain()
    loop._route()
    loop._publish()
    return [messages.parse(rec)[:3] for rec in loop.rings_out[0].pop_batch(1 << 20)]


def packet(conn, ptype, *args):
    return messages.packet(conn, ptype, request(ptype, *args)[12:])


A, B = messages.conn_id(0, 0, 1), messages.conn_id(0, 0, 2)
SEND, CLOSE = messages.SEND, messages.CLOSE


def broken(*_args):
    raise RuntimeError("a bug in a handler")


def test_failing_packet_closes_only_its_connection(py_loop, monkeypatch, caplog):
    loop = py_loop
    monkeypatch.setitem(dispatch.TABLE, int(T.ECHO_REQ), broken)
    turn(loop, messages.connect(A, 10, "127.0.0.1"), messages.connect(B, 11, "127.0.0.1"))
    with caplog.at_level(logging.ERROR):
        out = turn(loop, packet(B, T.SUBMIT_JOB_BG, b"f", b"", b"x"),
                   packet(A, T.ECHO_REQ, b"boom"),
                   packet(A, T.SUBMIT_JOB_BG, b"f", b"", b"after"),   # A is gone: ignored
                   packet(B, T.SUBMIT_JOB_BG, b"f", b"", b"y"))
    assert [(kind, conn) for kind, conn, _ in out] == [(SEND, B), (SEND, A), (CLOSE, A)]
    assert out[1][2] == encode(T.ERROR, b"SERVER_ERROR", b"Internal server error")
    assert out[0][2].count(b"\0RES") == 2          # B's two answers, in one record
    assert "a bug in a handler" in caplog.text and "Traceback" in caplog.text
    assert A not in loop.core.conns and B in loop.core.conns
    assert len(loop.core.jobs) == 2


def test_failing_admin_command_answers_err_and_closes(loop, monkeypatch):
    monkeypatch.setitem(admin.COMMANDS, b"status", broken)
    turn(loop, messages.connect(A, 10, "127.0.0.1"), messages.connect(B, 11, "127.0.0.1"))
    out = turn(loop, messages.admin(A, b"status", True), messages.admin(B, b"version", True))
    assert out == [(SEND, A, b"ERR SERVER_ERROR Internal+server+error\r\n"), (CLOSE, A, b""),
                   (SEND, B, b"OK t\n")]
    assert list(loop.core.conns) == [B]


def test_a_failing_close_still_closes(loop, monkeypatch):
    turn(loop, messages.connect(A, 10, "127.0.0.1"))
    monkeypatch.setattr(loop.core, "disconnect", broken)
    turn(loop, messages.closed(A))
    assert loop.running


def test_failing_figures_do_not_stop_the_loop(loop, caplog):
    class Broken:
        publish = count_workers = staticmethod(broken)
    loop.figures = Broken()
    loop.core.functions.get(b"f")
    loop.core.functions.dirty[loop.core.functions.by_name[b"f"]] = None
    loop._publish_figures()
    assert "a bug in a handler" in caplog.text and not loop.core.functions.dirty


def test_failing_reload_handler_is_logged(caplog):
    from mpgearman.coordinator.main import contained
    contained("applying the reloaded settings", broken)(["x"])
    assert "applying the reloaded settings failed" in caplog.text


def test_twin_records_after_a_failure_are_each_handled(py_loop, monkeypatch):
    """Equal records (same bytes) before and after the failing one."""
    loop = py_loop
    calls = []

    def fails_once(core, c, args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("second echo")
        core.send(c, b"echo")
    monkeypatch.setitem(dispatch.TABLE, int(T.ECHO_REQ), fails_once)
    turn(loop, messages.connect(A, 10, "127.0.0.1"), messages.connect(B, 11, "127.0.0.1"))
    echo_b = packet(B, T.ECHO_REQ, b"same")
    out = turn(loop, packet(B, T.ECHO_REQ, b"same"), packet(A, T.ECHO_REQ, b"x"),
               echo_b, packet(B, T.ECHO_REQ, b"same"))
    assert len(calls) == 4
    assert out == [(SEND, B, b"echo" * 3),        # B's sends share one record
                   (SEND, A, encode(T.ERROR, b"SERVER_ERROR", b"Internal server error")),
                   (CLOSE, A, b"")]
