"""Entry point of the coordinator process (forked by the supervisor)."""
import logging
import os
import signal

from .. import __version__, log, process
from .loop import CoordinatorLoop


def run(config, segment, board, my_bell, acceptor_bells, control) -> int:
    process.set_name("mpg-coordinator")
    process.die_with_parent()
    log.setup(config.log_level, "coordinator")
    segment.check()
    board.check()
    # Ctrl-C reaches the whole process group: the supervisor alone acts on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox = process.SignalInbox([signal.SIGTERM])
    loop = CoordinatorLoop(config, segment, board, my_bell, acceptor_bells, control, inbox,
                           pid=os.getppid(), version=__version__.encode())
    control.send("ready")
    try:
        loop.run()
    except Exception:
        logging.getLogger(__name__).exception("coordinator failed")
        return 1
    return 0
