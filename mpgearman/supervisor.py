"""The supervisor: what `mpgearman serve` runs in the foreground.

It creates the shared memory and doorbells before forking, so children
inherit them (memfd/eventfd: nothing is left in /dev/shm whatever happens),
starts one coordinator and N acceptors, restarts a dead acceptor (after the
coordinator has dropped that acceptor's connections and cleared its rings),
and on SIGTERM/SIGINT stops every child and removes the spool files.

It tells systemd how things stand (systemd.py): READY once every child is
up, STATUS from the coordinator's counts, WATCHDOG only while every child
beats, STOPPING. On SIGHUP it reloads the configuration (reload.py says
what applies live) and, when the acceptors' settings changed, rolls them:
a fresh set starts in the spare slots, the old set is retired once the
new one is ready (slots.py). Queued jobs live in the coordinator, which a
roll does not touch.
Signal handlers only record; this loop acts on what they recorded.
"""
import logging
import os
import resource
import select
import signal
import sys
import time
import traceback

from . import listeners, log, metrics, native, process, systemd
from . import reload as reloading
from .config import default_data_dir, default_handle_prefix
from .durable import store
from .slots import AcceptorSlots
from .acceptor import main as acceptor_main
from .acceptor import spool
from .coordinator import main as coordinator_main
from .ipc.control import Control
from .ipc.doorbell import Doorbell
from .ipc.board import StatusBoard
from .ipc.counters import Counters
from .ipc.layout import CTR_FIRST_ACCEPTOR, CTR_SUPERVISOR
from .ipc.shm import Segment

logger = logging.getLogger(__name__)

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
BOARD_SLOTS = 1 << 18     # job status slots (8 MiB); more live jobs share slots
FUNCTION_SLOTS = 1024     # functions with their own metrics; more share "__other__"
METRICS_RESTART = 1.0     # a dead metrics process is started again after this


class StartupError(Exception):
    pass


class Supervisor:
    def __init__(self, config, reload=None):
        self.config = config      # what the children run with
        self.settings = config    # as read: what a reload compares with
        self.reload = reload      # () -> fresh Config, or raises ConfigError
        self.n = config.acceptor_count
        self.acceptors = AcceptorSlots(self.n)
        self.slots = self.acceptors.count   # rings, doorbells, board lines
        self.children = {}        # pid -> (role, slot)
        self.controls = {}        # control fd -> (Control, role, slot, pid)
        self.reload_again = False
        self.coordinator = None   # (pid, Control)
        self.coordinator_ready = False
        self.serving = False
        self.stopping = False
        self.exit_code = 0
        self.inherited = []       # listening sockets from socket activation
        self.notifier = systemd.Notifier()
        self.health = systemd.Health(self.notifier)

    # -- start ------------------------------------------------------------------

    def start(self) -> None:
        _raise_fd_limit()
        self.inherited = systemd.listen_sockets()
        if self.inherited:
            self.placeholders, self.port = [], self.inherited[0].getsockname()[1]
            logger.info("socket activation: serving on the %d inherited socket(s); "
                        "--listen and --port are ignored", len(self.inherited))
        else:
            self.placeholders, self.port = listeners.reserve(self.config.listen,
                                                             self.config.port)
        spool_dir, self._lock = spool.prepare(self.config.spool_dir, self.port)
        data_dir = self.config.data_dir or default_data_dir(self.port)
        if self.config.durability != "none":
            self._data_lock = store.prepare(data_dir)
        # The default handle prefix names the port really served (0 picks one).
        self.config = cfg = self.config.replace(
            spool_dir=spool_dir, data_dir=data_dir,
            job_handle_prefix=self.config.job_handle_prefix or default_handle_prefix(self.port))
        self.segment = Segment.create(self.slots, cfg.ring_size)
        self.board = StatusBoard.create(self.slots, BOARD_SLOTS)
        self.counters = Counters.create(self.slots, FUNCTION_SLOTS)
        self.counters.start_process(CTR_SUPERVISOR, os.getpid())
        self.metrics_sock = metrics.bind(cfg.metrics_listen, cfg.metrics_port) \
            if cfg.metrics_port else None
        self.metrics_due = 0.0    # monotonic time to (re)start the metrics process
        self.coord_bell = Doorbell()
        self.acceptor_bells = [Doorbell() for _ in range(self.slots)]
        self.ep = select.epoll()
        self.inbox = process.SignalInbox(
            [signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP])
        self.ep.register(self.inbox.fileno(), select.EPOLLIN)
        self._start_coordinator()
        for i in self.acceptors.active:
            self._start_acceptor(i)
        if self.metrics_sock is not None:
            self._start_metrics()
        self._wait_ready()

    def _fork(self, role, index, body):
        mine, theirs = Control.pair()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:   # child
            code = 1
            try:
                process.die_with_parent(parent)
                process.reset_signals()
                self._close_in_child(mine)
                code = body(theirs)
            except BaseException:   # noqa: BLE001 - report, never return into the parent's code
                traceback.print_exc()
            finally:
                os._exit(code)
        theirs.close()
        self.children[pid] = (role, index)
        self.controls[mine.fileno()] = (mine, role, index, pid)
        self.ep.register(mine.fileno(), select.EPOLLIN)
        self.health.started(pid)
        return pid, mine

    def _close_in_child(self, mine) -> None:
        mine.close()
        self.notifier.close()
        for control, *_ in self.controls.values():
            control.close()
        for s in self.placeholders:
            s.close()
        if self.metrics_sock is not None:
            self.metrics_sock.close()
        self.ep.close()
        self.inbox.close()

    def _start_coordinator(self) -> None:
        cfg, seg = self.config, self.segment

        def body(control):
            for s in self.inherited:    # the acceptors' business alone
                s.close()
            return coordinator_main.run(cfg, seg, self.board, self.coord_bell,
                                        self.acceptor_bells, control, self.counters)

        self.coordinator = self._fork("coordinator", 0, body)

    def _start_acceptor(self, i) -> None:
        cfg, seg, port, gen = self.config, self.segment, self.port, self.acceptors.gens[i]

        def body(control):
            return acceptor_main.run(i, gen, cfg, port, seg, self.board,
                                     self.acceptor_bells[i], self.coord_bell, control,
                                     self.inherited, self.counters)

        try:
            self.coordinator[1].send("attach", i)     # before the acceptor can publish
        except OSError:     # the coordinator is gone; _reap stops the server
            return
        pid, _ = self._fork("acceptor", i, body)
        self.acceptors.started(i, pid)

    def _start_metrics(self) -> None:
        """Fork `mpg-metrics` on a copy of the metrics socket (every child
        closes the supervisor's own)."""
        self.metrics_due = 0.0
        sock = self.metrics_sock.dup()
        cfg, seg, counters = self.config, self.segment, self.counters
        pid, _ = self._fork("metrics", 0,
                            lambda control: metrics.run(cfg, seg, counters, sock))
        sock.close()
        # Not watched for heartbeats: a stuck scrape must not let the watchdog
        # restart the job server. A dead one is restarted (_reap).
        self.health.gone(pid)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not (self.coordinator_ready and self.acceptors.all_ready()):
            left = deadline - time.monotonic()
            if left <= 0 or self.stopping:
                raise StartupError("children did not become ready")
            self._turn(left)
            if self.exit_code:
                raise StartupError("a child process failed during start-up")

    # -- run ----------------------------------------------------------------------

    def run(self) -> int:
        if self.inherited:
            where = [listeners.describe(s) for s in self.inherited]
        else:
            where = [f"{self.config.listen or '*'}:{self.port}"]
        try:
            for address in where:
                print(f"mpgearman listening on {address}", flush=True)
        except OSError:     # a terminal that hung up: the log line says it
            sys.stdout = open(os.devnull, "w")      # (nothing left to flush at exit)
        logger.info("serving on %s with %d acceptors", ", ".join(where), self.n)
        self.serving = True
        self.health.ready(self.acceptors.up())
        if self.reload_again:
            self.reload_again = False
            self._reload()
        while not self.stopping:
            self._turn(1.0)
        return self.shutdown()

    def _turn(self, timeout) -> None:
        due, wait = self.acceptors.due()
        for i in due:
            self._start_acceptor(i)
        timeout = min(timeout, wait)
        if self.acceptors.roll_overdue(READY_TIMEOUT):
            self._abort_roll()
        if self.metrics_due:
            left = self.metrics_due - time.monotonic()
            if left <= 0:
                self._start_metrics()
            else:
                timeout = min(timeout, left)
        if self.serving:
            timeout = min(timeout, self.health.tick(self.acceptors.up()))
        for fd, _ in self.ep.poll(max(timeout, 0)):
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
            elif signum == signal.SIGHUP and not self.stopping:
                if self.serving:
                    self._reload()
                else:           # still starting: reload once READY=1 is out
                    self.reload_again = True

    def _on_control(self, fd) -> None:
        control, role, index, pid = self.controls[fd]
        lines = control.receive()
        if lines is None:
            self.ep.unregister(fd)
            del self.controls[fd]
            control.close()
            return
        for words in lines:
            if words[:1] == ["beat"]:
                self.health.beat(pid, words[1:])
            elif words == ["ready"] and role == "coordinator":
                self.coordinator_ready = True
            elif words == ["ready"]:
                self._acceptor_ready(index)
            elif words[:1] == ["reset"] and role == "coordinator" and not self.stopping:
                self._on_reset(int(words[1]), int(words[2]))

    def _acceptor_ready(self, i) -> None:
        if self.acceptors.now_ready(i):
            self._finish_roll()
        elif self.serving and not self.stopping and not self.acceptors.incoming:
            logger.info("acceptor %d restarted", i)

    def _on_reset(self, i, gen) -> None:
        """The coordinator has cleared slot i's rings: its acceptor is
        restarted, or, a retired one, the slot is free."""
        if not self.acceptors.reset(i, gen) and not self.acceptors.rolling \
                and self.reload_again:
            self.reload_again = False
            self._reload()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            role, index = self.children.pop(pid, (None, None))
            self.health.gone(pid)
            if role is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if role == "coordinator":
                logger.critical("coordinator exited (%s); stopping", code)
                self.exit_code = 1
                self.stopping = True
            elif role == "metrics":
                logger.error("metrics process (pid %d) exited (%s); restarting it", pid, code)
                self.metrics_due = time.monotonic() + METRICS_RESTART
            else:
                self.counters.start_process(CTR_FIRST_ACCEPTOR + index, 0)   # its writer is gone
                retired = self.acceptors.exited(index)
                if retired:
                    logger.debug("retired acceptor %d (pid %d) exited (%s)", index, pid, code)
                else:
                    logger.error("acceptor %d (pid %d) exited (%s); restarting it",
                                 index, pid, code)
                spool.clean(self.config.spool_dir,
                            only_parts_of=acceptor_main.spool_tag(index, pid))
                self.coordinator[1].send("lost", index, *(["retired"] if retired else []))

    # -- reload -------------------------------------------------------------------

    def _reload(self) -> None:
        if self.reload is None:
            logger.warning("SIGHUP: nothing to reload")
            return
        if self.acceptors.rolling:
            logger.info("SIGHUP: the last reload is still rolling the acceptors; "
                        "reloading again once it is done")
            self.reload_again = True
            return
        self.notifier.reloading()
        live = reloading.read(self.reload, self.settings, self.config)
        if live:
            self._apply(live)
        if not set(live or ()).intersection(reloading.ACCEPTOR) or not self._roll():
            self.health.ready(self.acceptors.up())

    def _apply(self, live) -> None:
        self.settings = self.settings.replace(**live)
        self.config = self.config.replace(**live)
        logging.getLogger().setLevel(log.LEVELS[self.config.log_level])
        if set(live).intersection(reloading.COORDINATOR):
            self.coordinator[1].send("configure",
                                     *reloading.encode(self.config, reloading.COORDINATOR))

    def _roll(self) -> bool:
        """Start a fresh set of acceptors, with the new settings, in the
        spare slots; _finish_roll retires the old set once all are ready."""
        starting = self.acceptors.begin_roll()
        if not starting:
            logger.warning("reload: with more than %d acceptors there are no spare slots; "
                           "the acceptors keep their settings until a restart", self.slots)
            return False
        for i in starting:
            self._start_acceptor(i)
        return True

    def _abort_roll(self) -> None:
        for pid in self.acceptors.abort_roll():
            _kill(pid, signal.SIGTERM)
        logger.error("reload: the new acceptors were not ready within %.0f s; the old ones "
                     "keep serving with the old acceptor settings", READY_TIMEOUT)
        self.health.ready(self.acceptors.up())

    def _finish_roll(self) -> None:
        old, stop = self.acceptors.finish_roll()
        for pid in stop:
            _kill(pid, signal.SIGTERM)
        new = self.acceptors.active
        logger.info("reload: acceptors %d-%d serve, %d-%d retired",
                    new[0], new[-1], old[0], old[-1])
        self.health.ready(self.acceptors.up())

    # -- stop ---------------------------------------------------------------------

    def shutdown(self) -> int:
        self.stopping = True
        self.notifier.stopping()
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
        self.counters.close()
        if self.metrics_sock is not None:
            self.metrics_sock.close()
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
    """Run the server until it is stopped; `reload` re-reads the settings
    on SIGHUP (without it SIGHUP only says there is nothing to reload)."""
    log.setup(config.log_level, "supervisor")
    native.settle_core(config.durability)
    sup = Supervisor(config, reload)
    try:
        sup.start()
    except (OSError, StartupError, systemd.ActivationError) as exc:
        logger.critical("cannot start: %s", exc)
        if sup.children:
            sup.shutdown()
        return 1
    logger.log(*native.describe())      # C extensions or pure-Python twins
    return sup.run()
