"""The acceptor's event loop in C (native/aloop.c), behind the interface of
loop.Acceptor, its pure-Python twin: the same constructor, run() and
close_all(), so main.py runs either.

Python is entered between time slices only: to send the heartbeat, to act
on a signal, and to write the log lines the C loop collected. No packet
passes through here.
"""
import logging

from ..ipc.control import BEAT_INTERVAL
from ..ipc.layout import CTR_FIRST_ACCEPTOR
from ..native import _aloop as aloop
from ..protocol.packets import ARGS, MAX_TYPE, REQUEST_TYPES
from .inbound import SUBMISSIONS
from .loop import share

log = logging.getLogger("mpgearman.acceptor.loop")   # the twin's logger: same log lines

ARGC, HAS_DATA, REQUEST, SUBMISSION = 0x0F, 0x10, 0x20, 0x40


def type_table() -> bytes:
    """One byte per packet type 0..MAX_TYPE: its argument count and flags
    (aloop.h), from protocol/packets.py, so both loops decode alike."""
    table = bytearray(MAX_TYPE + 1)
    for ptype, (argc, has_data) in ARGS.items():
        table[ptype] = ((argc & ARGC) | (HAS_DATA if has_data else 0)
                        | (REQUEST if ptype in REQUEST_TYPES else 0)
                        | (SUBMISSION if ptype in SUBMISSIONS else 0))
    return bytes(table)


class NativeAcceptor:
    def __init__(self, index, gen, config, listeners, ring_in, ring_out,
                 my_bell, coord_bell, spool, inbox, board=None, figures=None, slots=1,
                 counters=None):
        self.index, self.config = index, config
        self.listeners = {s.fileno(): s for s in listeners}
        self.inbox = inbox
        self.running = True
        self.loop = aloop.Loop(
            listen_fds=list(self.listeners), segment=ring_in.buffer,
            in_off=ring_in.offset, out_off=ring_out.offset,
            bell_fd=my_bell.fileno(), coord_bell_fd=coord_bell.fileno(),
            inbox_fd=inbox.fileno(), index=index, gen=gen & 0xFFFF, slots=slots,
            types=type_table(), max_payload=config.max_payload,
            stream_threshold=config.spool_threshold,
            max_queued_output=config.max_queued_output,
            max_spool_bytes=config.max_spool_bytes,
            request_timeout=float(config.request_timeout),
            capacity=share(config.max_connections, config.acceptor_count, index),
            spool_dir=spool.dir, spool_tag=spool.tag,
            counters=counters.mem if counters is not None else None,
            counters_line=CTR_FIRST_ACCEPTOR + index,
            board=board.mem if board is not None else None,
            handle_prefix=config.handle_prefix)

    def run(self, heartbeat=None) -> None:
        loop = self.loop
        while self.running:
            signalled = loop.run(BEAT_INTERVAL)
            self._write_logs()
            if signalled and self.inbox.take():
                self.running = False
            if heartbeat:
                heartbeat()

    def _write_logs(self) -> None:
        for level, text in self.loop.take_logs():
            log.log(level, "%s", text)

    def stats(self) -> dict:
        return self.loop.stats()

    def close_all(self) -> None:
        self.loop.close_all()
        self._write_logs()
        for s in self.listeners.values():
            s.close()
