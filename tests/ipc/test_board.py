"""The job status board: slots claimed, shared and released by the
coordinator, read by acceptors; C and Python implementations alike."""
import time
import types

import pytest

from mpgearman.acceptor.loop import Acceptor
from mpgearman.ipc import layout as L
from mpgearman.ipc.board import BoardError, StatusBoard
from mpgearman.native import board_py

try:
    from mpgearman.native import _board
except ImportError:  # pragma: no cover - CI builds it (tests/run checks)
    _board = None

IMPLS = [pytest.param(board_py, id="py"),
         pytest.param(_board, id="c", marks=pytest.mark.skipif(_board is None, reason="no C build"))]


@pytest.fixture(params=IMPLS)
def board(request):
    b = StatusBoard.create(acceptors=2, slots=8, impl=request.param).check()
    yield b
    b.close()


def test_claim_show_release(board):
    assert board.lookup(5) == (0, 0, 0, 0)
    assert board.claim(5)
    assert board.lookup(5) == (1, 0, 0, 0)
    board.show(5, True, 3, 4)
    assert board.lookup(5) == (1, 1, 3, 4)
    board.release(5, True)
    assert board.lookup(5) == (0, 0, 0, 0)


def test_a_shared_slot_sends_readers_to_the_coordinator(board):
    assert board.claim(3)
    assert not board.claim(11)              # 11 & 7 == 3: slot taken
    assert board.lookup(11) is None          # only the coordinator knows
    assert board.lookup(19) is None
    assert board.lookup(3) == (1, 0, 0, 0)
    board.release(3, True)
    assert board.lookup(11) is None          # 11 still lives elsewhere
    board.release(11, False)
    assert board.lookup(11) == (0, 0, 0, 0)
    assert board.claim(19)


def test_done_counters_are_per_acceptor(board):
    board.set_done(1, 42)
    assert (board.done(0), board.done(1)) == (0, 42)


def test_numbers_are_kept_as_u32(board):
    board.claim(1)
    board.show(1, True, 4294967295, 1 << 32)
    assert board.lookup(1) == (1, 1, 4294967295, 0)


def test_check_refuses_other_memory():
    b = StatusBoard.create(1, 8)
    b.mem[L.BOARD_MAGIC_OFF] ^= 0xFF
    with pytest.raises(BoardError, match="magic"):
        b.check()


@pytest.mark.skipif(_board is None, reason="no C build")
def test_twins_write_the_same_bytes():
    a = StatusBoard.create(1, 8, impl=_board)
    b = StatusBoard.create(1, 8, impl=board_py)
    for x in (a, b):
        x.claim(2)
        x.claim(10)
        x.show(2, True, 7, 9)
        x.set_done(0, 5)
    assert bytes(a.mem) == bytes(b.mem)


# -- the acceptor's use of it -----------------------------------------------------

class FakeConn:
    def __init__(self, last):
        self.last = last
        self.out = []

    def queue(self, data):
        self.out.append(data)


def _acceptor(board, done):
    board.set_done(0, done)
    drained = []
    acc = types.SimpleNamespace(board=board, index=0, prefix=b"H:x:", touched=set(),
                                _drain_outbound=lambda rounds: drained.append(rounds))
    return acc, drained


def test_local_status_answers_from_the_board(board):
    board.claim(7)
    board.show(7, True, 1, 2)
    acc, drained = _acceptor(board, done=10)
    conn = FakeConn(last=10)
    assert Acceptor.local_status(acc, conn, b"H:x:7")
    assert conn.out == [b"\0RES\0\0\0\x14\0\0\0\x0dH:x:7\x001\x001\x001\x002"]
    assert drained, "earlier answers must be applied first"
    assert Acceptor.local_status(acc, conn, b"H:x:8\0trailing")
    assert conn.out[1].endswith(b"H:x:8\x000\x000\x000\x000")


@pytest.mark.parametrize("handle", [b"H:y:7", b"H:x:07", b"H:x:", b"H:x:7a", b"x" * 70])
def test_local_status_leaves_odd_handles_to_the_coordinator(board, handle):
    acc, _ = _acceptor(board, done=10)
    assert not Acceptor.local_status(acc, FakeConn(last=10), handle)


def test_local_status_waits_for_earlier_answers(board):
    acc, _ = _acceptor(board, done=9)
    assert not Acceptor.local_status(acc, FakeConn(last=10), b"H:x:1")


def _leave_half_written(board, no):
    """The slot of job `no` as a writer that died mid-update leaves it: its
    sequence odd for good."""
    seq_at = board._slot(no) + L.SLOT_SEQ_OFF
    view = memoryview(board.mem)[seq_at:seq_at + 4].cast("I")
    view[0] |= 1
    view.release()


def test_a_slot_left_mid_update_sends_readers_to_the_coordinator(board):
    board.claim(6)
    board.show(6, True, 1, 2)
    _leave_half_written(board, 6)
    start = time.monotonic()
    assert board.impl.read(board.mem, board._slot(6)) is None
    assert board.lookup(6) is None          # ask the coordinator
    assert board.lookup(14) is None         # same slot, same answer
    acc, drained = _acceptor(board, done=10)
    conn = FakeConn(last=10)
    assert not Acceptor.local_status(acc, conn, b"H:x:6")   # forwarded instead
    assert conn.out == [] and drained == []
    assert time.monotonic() - start < 1.0
    assert board.lookup(7) == (0, 0, 0, 0)  # other slots are readable


def test_the_writer_refuses_to_build_on_a_slot_left_mid_update(board):
    board.claim(6)
    _leave_half_written(board, 6)
    with pytest.raises(BoardError, match="halfway through an update"):
        board.claim(14)
    with pytest.raises(BoardError, match="halfway through an update"):
        board.release(14, False)
