"""The supervisor: what `mpgearman serve` runs in the foreground.

It creates the shared memory and doorbells before forking, so children
inherit them (memfd/eventfd: nothing is left in /dev/shm whatever happens),
starts one coordinator and N acceptors, restarts a dead acceptor (after the
coordinator has dropped that acceptor's connections and cleared its rings),
and on SIGTERM/SIGINT stops every child and removes the spool files.

Signal handlers only record; this loop acts on what they recorded.
"""
import errno
import logging
import os
import resource
import select
import signal
import time
import traceback

from . import listeners, log, process
from .acceptor import main as acceptor_main
from .acceptor import spool
from .coordinator import main as coordinator_main
from .ipc.control import Control
from .ipc.doorbell import Doorbell
from .ipc.board import StatusBoard
from .ipc.shm import Segment

logger = logging.getLogger(__name__)

READY_TIMEOUT = 30.0
CRASH_WINDOW = 5.0        # an acceptor that dies sooner than this after its start
MAX_BACKOFF = 30.0        # ... is restarted after a delay doubling up to this
STOP_TIMEOUT = 10.0
BOARD_SLOTS = 1 << 18     # job status slots (8 MiB); more live jobs share slots


class StartupError(Exception):
    pass


class Supervisor:
    def __init__(self, config):
        self.config = config
        self.n = config.acceptor_count
        self.children = {}        # pid -> (role, index)
        self.controls = {}        # control fd -> (Control, role, index)
        self.acceptor_pids = [0] * self.n
        self.started_at = [0.0] * self.n
        self.backoff = [0.0] * self.n
        self.restarts = {}        # index -> (monotonic time to start it, generation)
        self.coordinator = None   # (pid, Control)
        self.ready = set()
        self.stopping = False
        self.exit_code = 0

    # -- start ------------------------------------------------------------------

    def start(self) -> None:
        _raise_fd_limit()
        self.placeholders, self.port = listeners.reserve(self.config.listen, self.config.port)
        self.config = cfg = self.config.replace(
            spool_dir=os.path.join(self.config.spool_dir, f"port-{self.port}"))
        os.makedirs(cfg.spool_dir, mode=0o700, exist_ok=True)
        self._lock = spool.lock(cfg.spool_dir, self.port)
        spool.clean(cfg.spool_dir)
        self.segment = Segment.create(self.n, cfg.ring_size)
        self.board = StatusBoard.create(self.n, BOARD_SLOTS)
        self.coord_bell = Doorbell()
        self.acceptor_bells = [Doorbell() for _ in range(self.n)]
        self.ep = select.epoll()
        self.inbox = process.SignalInbox(
            [signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP])
        self.ep.register(self.inbox.fileno(), select.EPOLLIN)
        self._start_coordinator()
        for i in range(self.n):
            self._start_acceptor(i, 0)
        self._wait_ready()

    def _fork(self, role, index, body):
        mine, theirs = Control.pair()
        pid = os.fork()
        if pid == 0:   # child
            code = 1
            try:
                process.reset_signals()
                self._close_in_child(mine)
                code = body(theirs)
            except BaseException:   # noqa: BLE001 - report, never return into the parent's code
                traceback.print_exc()
            finally:
                os._exit(code)
        theirs.close()
        self.children[pid] = (role, index)
        self.controls[mine.fileno()] = (mine, role, index)
        self.ep.register(mine.fileno(), select.EPOLLIN)
        return pid, mine

    def _close_in_child(self, mine) -> None:
        mine.close()
        for control, _, _ in self.controls.values():
            control.close()
        for s in self.placeholders:
            s.close()
        self.ep.close()
        self.inbox.close()

    def _start_coordinator(self) -> None:
        cfg, seg = self.config, self.segment

        def body(control):
            return coordinator_main.run(cfg, seg, self.board, self.coord_bell,
                                        self.acceptor_bells, control)

        self.coordinator = self._fork("coordinator", 0, body)

    def _start_acceptor(self, i, gen) -> None:
        cfg, seg, port = self.config, self.segment, self.port
        self.started_at[i] = time.monotonic()

        def body(control):
            return acceptor_main.run(i, gen, cfg, port, seg, self.board,
                                     self.acceptor_bells[i], self.coord_bell, control)

        self.acceptor_pids[i], _ = self._fork("acceptor", i, body)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while len(self.ready) < self.n + 1:
            left = deadline - time.monotonic()
            if left <= 0 or self.stopping:
                raise StartupError("children did not become ready")
            self._turn(left)
            if self.exit_code:
                raise StartupError("a child process failed during start-up")

    # -- run ----------------------------------------------------------------------

    def run(self) -> int:
        host = self.config.listen or "*"
        print(f"mpgearman listening on {host}:{self.port}", flush=True)
        logger.info("serving on port %d with %d acceptors", self.port, self.n)
        while not self.stopping:
            self._turn(1.0)
        return self.shutdown()

    def _schedule_restart(self, i, gen) -> None:
        """Restart at once, unless the acceptor keeps dying right after its
        start: then wait, doubling the wait each time, so a crash loop costs
        neither CPU nor a flood of logs."""
        lived = time.monotonic() - self.started_at[i]
        if lived < CRASH_WINDOW:
            self.backoff[i] = min(max(self.backoff[i] * 2, 0.5), MAX_BACKOFF)
            logger.error("acceptor %d died %.1f s after its start; next start in %.1f s",
                         i, lived, self.backoff[i])
        else:
            self.backoff[i] = 0.0
        self.restarts[i] = (time.monotonic() + self.backoff[i], gen)

    def _due_restarts(self) -> float:
        """Start the acceptors whose time has come; seconds until the next."""
        now, wait = time.monotonic(), 1.0
        for i, (when, gen) in list(self.restarts.items()):
            if when <= now:
                del self.restarts[i]
                self._start_acceptor(i, gen)
            else:
                wait = min(wait, when - now)
        return wait

    def _turn(self, timeout) -> None:
        if self.restarts:
            timeout = min(timeout, self._due_restarts())
        for fd, _ in self.ep.poll(timeout):
            if fd == self.inbox.fileno():
                self._on_signals(self.inbox.take())
            elif fd in self.controls:
                self._on_control(fd)

    def _on_signals(self, signums) -> None:
        # A stop request first: children dying of the same Ctrl-C are not
        # to be restarted.
        signums = sorted(signums, key=lambda s: s not in (signal.SIGTERM, signal.SIGINT))
        for signum in signums:
            if signum == signal.SIGCHLD:
                self._reap()
            elif signum in (signal.SIGTERM, signal.SIGINT):
                logger.info("stopping on %s", signal.Signals(signum).name)
                self.stopping = True
            elif signum == signal.SIGHUP:
                logger.info("SIGHUP: nothing to reload")

    def _on_control(self, fd) -> None:
        control, role, index = self.controls[fd]
        lines = control.receive()
        if lines is None:
            self.ep.unregister(fd)
            del self.controls[fd]
            control.close()
            return
        for words in lines:
            if words == ["ready"]:
                self.ready.add((role, index))
                if role == "acceptor" and not self.stopping and len(self.ready) > self.n + 1:
                    logger.info("acceptor %d restarted", index)
            elif words[:1] == ["reset"] and role == "coordinator" and not self.stopping:
                self._schedule_restart(int(words[1]), int(words[2]))

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            role, index = self.children.pop(pid, (None, None))
            if role is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if role == "coordinator":
                logger.critical("coordinator exited (%s); stopping", code)
                self.exit_code = 1
                self.stopping = True
            else:
                logger.error("acceptor %d (pid %d) exited (%s); restarting it", index, pid, code)
                spool.clean(self.config.spool_dir,
                            only_parts_of=acceptor_main.spool_tag(index, pid))
                self.ready.discard(("acceptor", index))
                self.coordinator[1].send("lost", index)

    # -- stop ---------------------------------------------------------------------

    def shutdown(self) -> int:
        self.stopping = True
        for pid in list(self.children):
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.02)
        for pid in list(self.children):
            logger.error("pid %d did not stop; killing it", pid)
            _kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self.children.pop(pid, None)
        spool.clean(self.config.spool_dir)
        self.segment.close()
        self.board.close()
        return self.exit_code


def _raise_fd_limit() -> None:
    """Every connection is a descriptor: take all the kernel allows us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        logger.debug("raised the open-files limit from %d to %d", soft, hard)


def _kill(pid, signum) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def serve(config, reload=None) -> int:
    log.setup(config.log_level, "supervisor")
    sup = Supervisor(config)
    try:
        sup.start()
    except (OSError, StartupError) as exc:
        if getattr(exc, "errno", None) == errno.EADDRINUSE:
            exc = (f"{exc.strerror}: port {config.port} is taken by another program "
                   f"(another job server such as gearmand?); choose one with --port")
        logger.critical("cannot start: %s", exc)
        if sup.children:
            sup.shutdown()
        return 1
    return sup.run()
