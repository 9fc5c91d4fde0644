"""Drive an acceptor's event loop, the C one or its Python twin, inside the
test process: a ring segment, doorbells, a spool directory and a listening
socket of its own, no coordinator. The test plays the coordinator: it takes
the records the loop published on the inbound ring and pushes SEND /
SENDFILE / CLOSE records on the outbound one.

Records come back normalized (connection ids as 0, 1, ... in order of
appearance, CONNECT's descriptor number and peer dropped, spool names
replaced by the file's bytes) so both loops can be compared.
"""
import os
import socket
import time

from mpgearman.acceptor.loop import Acceptor
from mpgearman.acceptor.spool import Spool
from mpgearman.config import Config
from mpgearman.ipc import messages
from mpgearman.ipc.board import StatusBoard
from mpgearman.ipc.doorbell import Doorbell
from mpgearman.ipc.shm import Segment

RING = 1 << 20


class Inbox:
    """The signal inbox, as the loops see it: a readable fd means stop."""

    def __init__(self):
        self.r, self.w = socket.socketpair()
        self.r.setblocking(False)

    def fileno(self):
        return self.r.fileno()

    def take(self):
        try:
            return list(self.r.recv(100))
        except BlockingIOError:
            return []


class Harness:
    def __init__(self, kind: str, spool_dir: str, **options):
        self.kind = kind
        self.config = Config(port=0, acceptors=1, spool_dir=spool_dir, job_handle_prefix="H:x",
                             spool_threshold=options.pop("spool_threshold", 4096),
                             ring_size=RING, **options)
        self.segment = Segment.create(1, RING)
        self.ring_in, self.ring_out = self.segment.inbound(0), self.segment.outbound(0)
        self.bell, self.coord_bell = Doorbell(), Doorbell()
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.spool = Spool(spool_dir, f"a0.{os.getpid()}")
        self.inbox = Inbox()
        # Job 7 runs, 1/2 done; the test says how many records were handled.
        self.board = StatusBoard.create(1, 8).check()
        self.board.claim(7)
        self.board.show(7, True, 1, 2)
        self.handled = 0
        args = (0, 1, self.config, [self.lsock], self.ring_in, self.ring_out, self.bell,
                self.coord_bell, self.spool, self.inbox, self.board)
        if kind == "c":
            from mpgearman.acceptor.native_loop import NativeAcceptor
            self.acc = NativeAcceptor(*args)
        else:
            self.acc = Acceptor(*args)
        self.ids = {}

    def turns(self, seconds: float = 0.02) -> None:
        """Run the loop for about `seconds`."""
        if self.kind == "c":
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                self.acc.loop.run(0.01)
                self.acc._write_logs()
            return
        end = time.monotonic() + seconds

        def beat():
            self.bell.ring()             # keep the next poll short
            if time.monotonic() >= end:
                self.acc.running = False
        self.acc.running = True
        self.acc.run(heartbeat=beat)

    def connect(self) -> socket.socket:
        c = socket.create_connection(("127.0.0.1", self.port))
        c.settimeout(2)
        self.turns()
        return c

    def records(self) -> list:
        out = []
        while True:
            batch = self.ring_in.pop_batch(256)
            if not batch:
                return out
            self.handled += len(batch)
            out.extend(self._normal(rec) for rec in batch)

    def answered(self) -> None:
        """The coordinator has handled (and answered) every record taken."""
        self.board.set_done(0, self.handled)

    def conn_id(self, index: int) -> int:
        return next(cid for cid, i in self.ids.items() if i == index)

    def _normal(self, rec: bytes) -> tuple:
        kind, conn, *fields = messages.parse(rec)
        index = self.ids.setdefault(conn, len(self.ids))
        if kind == messages.CONNECT:
            return kind, index
        if kind == messages.SPOOLED:
            ptype, name, size, args = fields
            with open(os.path.join(self.config.spool_dir, name), "rb") as f:
                data = f.read()
            os.unlink(os.path.join(self.config.spool_dir, name))
            return kind, index, ptype, size, args, data
        return (kind, index, *fields)

    def send(self, index: int, data: bytes) -> None:
        assert self.ring_out.push(messages.send(self.conn_id(index), data))
        self.bell.ring()

    def sendfile(self, index: int, head: bytes, data: bytes, name: str) -> None:
        with open(os.path.join(self.config.spool_dir, name), "wb") as f:
            f.write(data)
        assert self.ring_out.push(messages.sendfile(self.conn_id(index), head, name,
                                                    len(data)))
        self.bell.ring()

    def close(self, index: int) -> None:
        assert self.ring_out.push(messages.close(self.conn_id(index)))
        self.bell.ring()

    def shutdown(self) -> None:
        self.acc.close_all()
        self.acc = None          # the C loop holds the segment's buffer
        self.board.close()
        self.bell.close()
        self.coord_bell.close()
        self.segment.close()


def receive(sock: socket.socket, timeout: float = 0.1) -> tuple:
    """(bytes the peer got within `timeout`, True if it saw the end)."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return got, True
            got += chunk
    except (socket.timeout, BlockingIOError):
        return got, False
    except ConnectionResetError:
        return got, True
