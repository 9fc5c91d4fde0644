"""Two coordinator loops over their own segments, one with the rings served
in C (NativeRings) and one with the Python path, fed the same inbound
records or the same Core output: the outbound rings must carry the same
records. The loops run in this process; the tests play the acceptor."""
from mpgearman.config import Config
from mpgearman.coordinator.ccore import CCore
from mpgearman.coordinator.loop import CoordinatorLoop
from mpgearman.ipc import messages
from mpgearman.ipc.board import StatusBoard
from mpgearman.ipc.control import Control
from mpgearman.ipc.doorbell import Doorbell
from mpgearman.ipc.shm import Segment

PREFIX = b"H:t"
RING = 1 << 16


class Inbox(Doorbell):
    def take(self):
        return []


class Twin:
    """One loop of the pair; `fast` says whether the rings are served in C."""

    def __init__(self, tmp_path, fast: bool, pairs: int = 1, ring: int = RING):
        self.segment = Segment.create(pairs, ring)
        self.board = StatusBoard.create(pairs, 1024)
        self.bells = [Doorbell()] + [Doorbell() for _ in range(pairs)] + [Inbox()]
        self.control, self.other = Control.pair()
        config = Config(spool_dir=str(tmp_path), job_handle_prefix=PREFIX.decode(),
                        spool_threshold=1024)
        self.loop = CoordinatorLoop(config, self.segment, self.board, self.bells[0],
                                    self.bells[1:-1], self.control, self.bells[-1],
                                    pid=1, version=b"t")
        assert isinstance(self.loop.core, CCore)
        if fast and self.loop.fast is None:           # the C core, serving the rings
            from mpgearman.coordinator.native_rings import NativeRings
            self.loop.fast = NativeRings(self.loop, self.loop.core.c)
        elif not fast and self.loop.fast is not None:   # the loop's Python path
            self.loop.fast.close()
            self.loop.fast = None
        for i in range(pairs):
            self.loop.attach(i)
        self.released = []
        self.loop.spool.release = self.released.append

    def feed(self, i, records) -> None:
        assert self.loop.rings_in[i].push_many(list(records)) == len(records)

    def turn(self) -> None:
        self.loop._drain()
        self.loop._route()
        self.loop._publish()

    def taken(self, i=0, limit=1 << 20) -> list:
        return self.loop.rings_out[i].pop_batch(limit)

    def close(self):
        self.loop.close()
        for thing in (self.control, self.other, *self.bells, self.board, self.segment):
            thing.close()


def packet(conn, ptype, *args):
    return messages.packet(conn, ptype, b"\0".join(args))
