"""One asyncio connection to a server for the asyncio client and worker.

It owns the stream pair and two tasks: a reader feeding `receive` and a
writer sending whatever `output()` yields (back-pressured by drain()).
`kick()` wakes the writer after new output was queued. When the server
goes away, `on_lost(reason)` is called exactly once. It must not know the
protocol: the session does.
"""
import asyncio
import socket
from collections.abc import Callable
from typing import Any

RECV_SIZE = 256 << 10


async def open_stream(host: str, port: int, timeout: float | None
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


class AsyncConnection:
    def __init__(self, address: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, session: Any,
                 receive: Callable[[bytes], None],
                 on_lost: Callable[["AsyncConnection", str], None]) -> None:
        self.address = address
        self.session = session
        self._reader, self._writer = reader, writer
        self._receive = receive            # receive(data) -> None, may raise
        self._on_lost = on_lost
        self._kick = asyncio.Event()
        self._kick.set()
        self.closed = False
        self._tasks = [asyncio.ensure_future(self._read_loop()),
                       asyncio.ensure_future(self._write_loop())]

    @property
    def flushed(self) -> bool:
        """Nothing queued and the transport's buffer is empty."""
        transport = self._writer.transport
        return (not self.session.has_output and not self._kick.is_set()
                and (transport is None or transport.get_write_buffer_size() == 0))

    def kick(self) -> None:
        self._kick.set()

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(RECV_SIZE)
                if not data:
                    self.lost("connection closed by the server")
                    return
                self._receive(data)
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            self.lost(exc.strerror or str(exc))
        except Exception as exc:       # noqa: BLE001 - a ProtocolError from the session
            self.lost(str(exc))

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._kick.wait()
                self._kick.clear()
                while (chunk := self.session.output()) is not None:
                    self._writer.write(bytes(chunk))
                    await self._writer.drain()
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            self.lost(exc.strerror or str(exc))

    def lost(self, reason: str) -> None:
        if self.closed:
            return
        self.close()
        self._on_lost(self, reason)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._writer.close()
