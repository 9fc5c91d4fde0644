"""The job status board: the job table's public face in shared memory.

The coordinator (its only writer) mirrors each job's status (handle
number, running, numerator, denominator) into a slot, and after each turn
records, per acceptor, how many of that acceptor's records it has handled
and answered. An acceptor answers GET_STATUS from here, without a trip to
the coordinator, once every earlier request of that connection has been
answered (so replies keep their order); on any doubt it asks the
coordinator instead. Layout and seqlock: mpgearman/native/layout.h.

Must not: decide anything about jobs (the coordinator's Core does), or be
written by an acceptor.
"""
import struct

from mpgearman.ipc import layout as L
from mpgearman.ipc.shm import map_shared
from mpgearman.native import board as _impl

_U64 = struct.Struct("@Q")
_U32 = struct.Struct("@I")
SLOT_SIZE = L.SLOT_SIZE     # a global is cheaper than the module attribute per job


class BoardError(RuntimeError):
    """The memory is not a status board of the layout this code speaks."""


class StatusBoard:
    __slots__ = ("mem", "mask", "slots_off", "acceptors", "impl")

    def __init__(self, mem, impl=None):
        self.mem = mem
        self.impl = impl or _impl
        self.acceptors = _U32.unpack_from(mem, L.BOARD_COUNT_OFF)[0]
        self.mask = _U64.unpack_from(mem, L.BOARD_SLOTS_OFF)[0] - 1
        self.slots_off = L.BOARD_DONE_OFF + self.acceptors * L.BOARD_DONE_STRIDE

    @classmethod
    def create(cls, acceptors: int, slots: int, impl=None) -> "StatusBoard":
        if slots < 1 or slots & (slots - 1):
            raise ValueError(f"slot count {slots} is not a power of two")
        size = L.BOARD_DONE_OFF + acceptors * L.BOARD_DONE_STRIDE + slots * L.SLOT_SIZE
        mem = map_shared("mpgearman-board", size)
        _U32.pack_into(mem, L.BOARD_VERSION_OFF, L.BOARD_VERSION)
        _U32.pack_into(mem, L.BOARD_COUNT_OFF, acceptors)
        _U64.pack_into(mem, L.BOARD_SLOTS_OFF, slots)
        _U64.pack_into(mem, L.BOARD_MAGIC_OFF, L.BOARD_MAGIC)   # last: now it is valid
        return cls(mem, impl)

    def check(self) -> "StatusBoard":
        magic = _U64.unpack_from(self.mem, L.BOARD_MAGIC_OFF)[0]
        version = _U32.unpack_from(self.mem, L.BOARD_VERSION_OFF)[0]
        if magic != L.BOARD_MAGIC:
            raise BoardError(f"status board magic is {magic:#x}, not {L.BOARD_MAGIC:#x}")
        if version != L.BOARD_VERSION or self.impl.LAYOUT_VERSION != L.BOARD_VERSION:
            raise BoardError(f"status board layout {version} (code speaks "
                             f"{L.BOARD_VERSION}, native {self.impl.LAYOUT_VERSION})")
        return self

    def _slot(self, no: int) -> int:
        return self.slots_off + (no & self.mask) * L.SLOT_SIZE

    # -- the coordinator's side -------------------------------------------------

    def claim(self, no: int) -> bool:
        """A job numbered `no` was created: take its slot, or count it as a
        collision if an older live job holds the slot. True = it has the slot."""
        off = self.slots_off + (no & self.mask) * SLOT_SIZE    # _slot(), inline
        held, _, _, _, collisions = self._read_own(off)
        if held == 0:
            self.impl.write(self.mem, off, no, 0, 0, 0)
            return True
        self.impl.set_collisions(self.mem, off, collisions + 1)
        return False

    def show(self, no: int, running: bool, num: int, den: int) -> None:
        """New status of a job that holds its slot."""
        self.impl.write(self.mem, self.slots_off + (no & self.mask) * SLOT_SIZE, no,
                        running, num & 0xFFFFFFFF, den & 0xFFFFFFFF)

    def release(self, no: int, held: bool) -> None:
        """The job is gone."""
        off = self.slots_off + (no & self.mask) * SLOT_SIZE
        if held:
            self.impl.write(self.mem, off, 0, 0, 0, 0)
        else:
            collisions = self._read_own(off)[4]
            self.impl.set_collisions(self.mem, off, collisions - 1)

    def _read_own(self, off: int):
        fields = self.impl.read(self.mem, off)
        if fields is None:
            # Only this process writes slots, and it is not writing now.
            raise BoardError(f"status board slot at offset {off} was left "
                             "halfway through an update")
        return fields

    def set_done(self, acceptor: int, records: int) -> None:
        self.impl.store(self.mem, L.BOARD_DONE_OFF + acceptor * L.BOARD_DONE_STRIDE, records)

    # -- the acceptors' side -------------------------------------------------------

    def done(self, acceptor: int) -> int:
        return self.impl.load(self.mem, L.BOARD_DONE_OFF + acceptor * L.BOARD_DONE_STRIDE)

    def lookup(self, no: int):
        """(known, running, num, den) of job `no`, or None when only the
        coordinator can tell: its slot is shared with other live jobs, or
        no consistent copy of the slot could be read (the writer is stuck or
        died halfway through an update)."""
        fields = self.impl.read(self.mem, self._slot(no))
        if fields is None:
            return None
        held, running, num, den, collisions = fields
        if held == no:
            return 1, running, num, den
        if collisions == 0:
            return 0, 0, 0, 0
        return None

    def close(self) -> None:
        self.mem.close()
