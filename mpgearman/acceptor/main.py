"""Entry point of an acceptor process (forked by the supervisor)."""
import logging
import os
import signal

from .. import listeners, log, process
from ..ipc.control import Heartbeat
from ..ipc.layout import CTR_FIRST_ACCEPTOR
from ..native import aloop
from .loop import Acceptor
from .spool import Spool

logger = logging.getLogger(__name__)


def spool_tag(index: int, pid: int) -> str:
    """Prefix of the spool files an acceptor writes (see spool.clean)."""
    return f"a{index}.{pid}"


def run(index, gen, config, port, segment, board, my_bell, coord_bell, control,
        inherited=(), counters=None) -> int:
    """`inherited`: listening sockets from socket activation, shared by
    every acceptor; without them the acceptor binds its own."""
    process.set_name(f"mpg-acceptor-{index}")
    log.setup(config.log_level, f"acceptor-{index}")
    segment.check()
    board.check()
    figures = None
    if counters is not None:
        counters.check().start_process(CTR_FIRST_ACCEPTOR + index, os.getpid())
        figures = counters.acceptor_writer(index)
    # Ctrl-C reaches the whole process group: the supervisor alone acts on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox = process.SignalInbox([signal.SIGTERM])
    args = (index, gen, config, listeners.open_listeners(config.listen, port, inherited),
            segment.inbound(index), segment.outbound(index), my_bell, coord_bell,
            Spool(config.spool_dir, spool_tag(index, os.getpid())), inbox, board, figures)
    if aloop is not None:       # the event loop in C (native_loop.py)
        from .native_loop import NativeAcceptor
        acc = NativeAcceptor(*args, slots=segment.pairs, counters=counters)
    else:
        acc = Acceptor(*args, slots=segment.pairs)
    control.send("ready")
    logger.info("accepting on %s", ", ".join(listeners.describe(s) for s in acc.listeners.values()))
    try:
        acc.run(heartbeat=Heartbeat(control))
    except Exception:
        logger.exception("acceptor failed")
        return 1
    acc.close_all()
    return 0
