"""Entry point of the coordinator process (forked by the supervisor).

Besides starting the loop it owns the coordinator's side of the control
channel that is not about acceptors: its heartbeat, which carries the
counts the supervisor shows systemd, and the settings a reload changes
live (reload.COORDINATOR)."""
import logging
import os
import signal

from .. import __version__, log, process
from .. import reload as reloading
from ..ipc.control import Heartbeat
from ..ipc.layout import CTR_COORDINATOR as COORDINATOR_LINE
from ..durable.replay import JournalDamaged
from .loop import CoordinatorLoop

logger = logging.getLogger(__name__)


def run(config, segment, board, my_bell, acceptor_bells, control, counters=None) -> int:
    process.set_name("mpg-coordinator")
    log.setup(config.log_level, "coordinator")
    segment.check()
    board.check()
    if counters is not None:
        counters.check().start_process(COORDINATOR_LINE, os.getpid())
    # Ctrl-C reaches the whole process group: the supervisor alone acts on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox = process.SignalInbox([signal.SIGTERM])
    # A journal write past a file-size limit is an error to handle, not a death.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        loop = CoordinatorLoop(config, segment, board, my_bell, acceptor_bells, control, inbox,
                               pid=os.getppid(), version=__version__.encode(),
                               counters=counters)
    except JournalDamaged as exc:
        logger.critical("cannot start: %s", exc)
        return 2
    control.on("configure", contained(
        "applying the reloaded settings", lambda words: configure(loop.core, reloading.decode(words))))
    control.on("attach", lambda words: loop.attach(int(words[0])))
    control.send("ready")
    try:
        loop.run(heartbeat=Heartbeat(control, lambda: counts(loop.core)))
    except Exception:
        logging.getLogger(__name__).exception("coordinator failed")
        return 1
    finally:
        if loop.writer is not None:
            loop.compactor.close()
            loop.writer.close()       # synced before exit
    return 0


def contained(what: str, handler):
    """`handler`, with a failure logged instead of stopping the coordinator."""
    def run_contained(words):
        try:
            handler(words)
        except Exception:
            logger.exception("%s failed; the server goes on as it was", what)
    return run_contained


def counts(core) -> tuple:
    """(connections, queued jobs, workers) for the supervisor's STATUS."""
    return core.counts()


def configure(core, settings: dict) -> None:
    """Apply settings a reload changed; `exceptions` holds for connections
    made from now on, the others for the next decision that reads them."""
    changed = {k: v for k, v in settings.items() if getattr(core.config, k) != v}
    if not changed:
        return
    core.config = core.config.replace(**changed)
    core.job_retries = core.config.job_retries
    core.round_robin = core.config.round_robin
    core.registry.wakeup = core.config.worker_wakeup
    logging.getLogger().setLevel(log.LEVELS[core.config.log_level])
    logger.info("settings changed: %s", ", ".join(f"{k}={v}" for k, v in changed.items()))
