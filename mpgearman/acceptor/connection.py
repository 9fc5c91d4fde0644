"""One client or worker socket as an acceptor sees it: the decoder that
turns its bytes into events, the spool file a streamed body is going into,
and the queue of bytes and spool files waiting to be written to it.

Writing never blocks: what the socket does not take now stays queued, and
the loop asks for EPOLLOUT until the queue is empty.
"""
import collections
import os

from ..protocol.decoder import Decoder


class FileOut:
    """A packet whose payload is a spool file: what is left of its head
    bytes, then of the file, to be sent with sendfile()."""
    __slots__ = ("head", "fd", "offset", "left")

    def __init__(self, head: bytes, fd: int, size: int):
        self.head, self.fd, self.offset, self.left = head, fd, 0, size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Connection:
    __slots__ = ("sock", "fd", "number", "id", "decoder", "out", "out_bytes", "writer",
                 "head", "reading", "closing", "mask", "last", "linger", "due", "got",
                 "reserved")

    def __init__(self, sock, conn_id: int, max_payload: int, stream_threshold: int):
        self.sock = sock
        self.fd = sock.fileno()
        self.number = self.fd            # as `workers` shows it (the acceptor sets it)
        self.id = conn_id
        # raw: whole requests come out as (type, payload), which is what the
        # PACKET record carries.
        self.decoder = Decoder(max_payload, stream_threshold, raw=True)
        self.out = collections.deque()   # bytes | FileOut, in order
        self.out_bytes = 0               # queued bytes, spool files included
        self.writer = None               # SpoolWriter of a body being streamed in
        self.head = None                 # PacketHead of that body
        self.reserved = 0                # its size, counted as spool in use
        self.reading = True              # False after a protocol error
        self.closing = False             # close once `out` is flushed
        self.mask = 1                    # epoll events registered (EPOLLIN)
        self.last = 0                    # serial of its latest record to the coordinator
        self.linger = 0.0                # closing: discard input until this time
        self.due = 0.0                   # a request is unfinished: time out at (deadlines.py)
        self.got = 0                     # ... bytes of it since `due` was set

    def queue(self, data: bytes) -> None:
        if data:
            self.out.append(data)
            self.out_bytes += len(data)

    def queue_file(self, head: bytes, fd: int, size: int) -> None:
        """A packet: `head`, then the `size` bytes of the spool file `fd`."""
        if size:
            self.out.append(FileOut(head, fd, size))
            self.out_bytes += len(head) + size
        else:
            os.close(fd)
            self.queue(head)

    def backlog(self) -> int:
        """Bytes waiting behind the item being written: one packet bigger
        than any limit (a big payload) may go, a pile of them may not."""
        out = self.out
        if not out:
            return 0
        first = out[0]
        return self.out_bytes - (len(first.head) + first.left if type(first) is FileOut
                                 else len(first))

    def flush(self) -> bool:
        """Write what the socket takes now. True when everything is out.
        Raises OSError when the peer is gone."""
        out = self.out
        while out:
            item = out[0]
            if type(item) is FileOut:
                if item.head:
                    n = self.sock.send(item.head)
                    self.out_bytes -= n
                    item.head = item.head[n:]
                    if item.head:
                        return False
                n = os.sendfile(self.fd, item.fd, item.offset, min(item.left, 1 << 24))
                if n == 0:
                    raise ConnectionError("spool file shorter than announced")
                item.offset += n
                item.left -= n
                self.out_bytes -= n
                if item.left:
                    return False
                item.close()
                out.popleft()
                continue
            if len(out) > 1 and type(out[1]) is bytes:
                item = self._coalesce()
            n = self.sock.send(item)
            self.out_bytes -= n
            if n < len(item):
                out[0] = item[n:]
                return False
            out.popleft()
        return True

    def _coalesce(self) -> bytes:
        """Join the leading run of small byte strings into one send()."""
        out = self.out
        parts = []
        size = 0
        while out and type(out[0]) is bytes and size < 1 << 20:
            part = out.popleft()
            parts.append(part)
            size += len(part)
        joined = b"".join(parts)
        out.appendleft(joined)
        return joined

    def discard(self) -> None:
        """Release everything this connection holds (on close)."""
        for item in self.out:
            if type(item) is FileOut:
                item.close()
        self.out.clear()
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
