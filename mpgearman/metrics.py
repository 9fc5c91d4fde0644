"""Prometheus metrics: the `mpg-metrics` process and its exposition.

Owns: the listening socket for `serve --metrics-port` on
`--metrics-listen` (bound by the
supervisor before it forks, so a taken port stops `serve` at once and a
scrape never races the start), the HTTP answers (GET or HEAD /metrics,
served by prometheus_client: the text format 0.0.4 or OpenMetrics as the
scraper's Accept header asks, gzip when it accepts that; 404 for any other
path, 405 for other methods), and the custom collector that turns what
shared memory and /proc say into metric families at scrape time.

Must not: write to shared memory, talk to the coordinator or slow anyone
down: everything is read when a scrape asks, from the counters mapping
(ipc/counters.py), the ring control blocks, the spool directory and psutil.

Label cardinality is bounded: functions by the counters table (the rest
share function="__other__"), acceptors and processes by --acceptors.
"""
import logging
import os
import signal
import socket
import sys
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, InfoMetricFamily)
from prometheus_client.exposition import generate_latest, make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from . import __version__, log, native, process, procstat
from .coordinator.queues import BOUNDS
from .ipc import layout as L
from .ipc.counters import histogram

logger = logging.getLogger(__name__)

JOB_COUNTERS = {
    "submitted": "Jobs created by a submission (joining an existing job by its unique id does not count).",
    "completed": "Jobs ended by WORK_COMPLETE.",
    "failed": "Jobs ended by WORK_FAIL, or failed after --job-retries attempts.",
    "exceptions": "Jobs ended by WORK_EXCEPTION.",
    "requeued": "Jobs put back in their queue because their worker was lost or timed out.",
}
LE = [*(repr(b) for b in BOUNDS), "+Inf"]

def bind(listen: str, port: int) -> socket.socket:
    """The metrics listening socket on the --metrics-listen address
    (loopback by default: /metrics has no authentication and shows pids and
    function names; "" = every IPv4 and IPv6 address, one dual-stack socket
    when the system has it).
    Failures are OSErrors that say which port, without an errno, so that
    nobody mistakes them for the job port being taken."""
    try:
        return _bind(listen, port)
    except OSError as exc:
        # create_server() appends the address to strerror; say it once.
        reason = exc.strerror or str(exc)
        if exc.errno and not isinstance(exc, socket.gaierror):
            reason = os.strerror(exc.errno)
        raise OSError(f"cannot listen for metrics on {listen or '*'}:{port}: {reason}") from None


def _bind(listen: str, port: int) -> socket.socket:
    if not listen:
        if socket.has_dualstack_ipv6():
            return socket.create_server(("", port), family=socket.AF_INET6,
                                        dualstack_ipv6=True)
        return socket.create_server(("", port))
    family, _, _, _, addr = socket.getaddrinfo(listen, port, type=socket.SOCK_STREAM)[0]
    return socket.create_server(addr[:2], family=family)


# -- the collector ---------------------------------------------------------------

def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _gauge(name, help_text, labels, samples):
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _counter(name, help_text, labels, samples):
    family = CounterMetricFamily(name, help_text, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _histogram(name, help_text, functions, kind):
    family = HistogramMetricFamily(name, help_text, labels=["function"])
    for fname, f in functions:
        counts, total = histogram(f, kind)
        running, buckets = 0, []
        for le, n in zip(LE, counts):
            running += n
            buckets.append((le, running))
        family.add_metric([fname], buckets, total)
    return family


def function_families(functions, now: float) -> list:
    """functions: (name, counters.functions() dict) pairs."""
    out = [_counter(f"mpgearman_jobs_{field}", help_text, ["function"],
                    [([n], f[field]) for n, f in functions])
           for field, help_text in JOB_COUNTERS.items()]
    out += [
        _gauge("mpgearman_jobs_queued",
               "Jobs waiting in a queue (future epoch jobs count as normal).",
               ["function", "priority"],
               [([n, p], f[f"queued_{p}"]) for n, f in functions
                for p in ("high", "normal", "low")]),
        _gauge("mpgearman_jobs_running", "Jobs assigned to a worker.", ["function"],
               [([n], f["running"]) for n, f in functions]),
        _gauge("mpgearman_workers",
               "Worker registrations (CAN_DO) for the function, busy or not.", ["function"],
               [([n], f["workers"]) for n, f in functions]),
        _gauge("mpgearman_workers_busy",
               "Worker connections registered for the function that run a job "
               "(counted at most once a second).", ["function"],
               [([n], f["busy"]) for n, f in functions]),
        _gauge("mpgearman_workers_idle",
               "Worker connections registered for the function that run no job "
               "(counted at most once a second).", ["function"],
               [([n], f["idle"]) for n, f in functions]),
        _gauge("mpgearman_oldest_queued_job_age_seconds",
               "How long the longest-waiting queued job of the function has waited "
               "(0 when none is queued; not known for function=\"__other__\").",
               ["function"],
               [([n], max(now - f["oldest_queued_us"] / 1e6, 0.0)
                 if f["oldest_queued_us"] else 0.0) for n, f in functions]),
        _histogram("mpgearman_job_wait_seconds",
                   "Time from queued (submitted, due, or requeued) to assigned to a worker.",
                   functions, "wait"),
        _histogram("mpgearman_job_run_seconds",
                   "Time from assigned to a worker to the job's end.", functions, "run"),
    ]
    return out


def _acceptor_families(counters, segment) -> list:
    figures = counters.acceptor_figures()
    return [
        _gauge("mpgearman_connections_open", "Connections an acceptor holds.", ["acceptor"],
               [([str(i)], open_now) for i, _, open_now, _ in figures]),
        _counter("mpgearman_connections_accepted",
                 "Connections an acceptor accepted since it started.", ["acceptor"],
                 [([str(i)], accepted) for i, accepted, _, _ in figures]),
        _counter("mpgearman_spool_written_bytes",
                 "Payload bytes an acceptor streamed into spool files since it started.",
                 ["acceptor"], [([str(i)], spooled) for i, _, _, spooled in figures]),
        _gauge("mpgearman_ring_used_bytes",
               "Bytes in flight in a shared-memory ring (inbound: acceptor to "
               "coordinator; outbound: coordinator to acceptor).", ["acceptor", "direction"],
               [([str(i), d], ring_used(segment, i, d))
                for i, *_ in figures for d in ("inbound", "outbound")]),
        _gauge("mpgearman_ring_capacity_bytes", "Data bytes per ring.", [],
               [([], segment.ring_capacity)]),
    ]


def _process_families(counters) -> list:
    running = counters.processes()
    who = [([r, str(i)], p) for r, i, *p in procstat.sample(running)]
    labels = ["role", "index"]
    started = [([r, str(i)], t) for r, i, t in procstat.start_times(running)]
    return [
        _counter("mpgearman_process_cpu_seconds", "User and system CPU time of a server process.",
                 labels, [(k, round(p[1], 3)) for k, p in who]),
        _gauge("mpgearman_process_resident_memory_bytes", "Resident memory of a server process.",
               labels, [(k, p[2]) for k, p in who]),
        _gauge("mpgearman_process_id", "Pid of a server process.", labels,
               [(k, p[0]) for k, p in who]),
        _gauge("mpgearman_process_start_time_seconds",
               "Start time of a server process since the Unix epoch.", labels,
               started),
    ]


class Collector:
    """Everything /metrics shows, read from shared memory and /proc when a
    scrape asks."""

    def __init__(self, counters, segment, spool_dir: str, clock=time.time):
        self.counters, self.segment, self.spool_dir = counters, segment, spool_dir
        self.clock = clock

    def describe(self):
        return []       # no fixed list: families depend on what is there

    def collect(self):
        counters = self.counters
        functions = [(_name(name), f) for name, f in counters.functions()
                     if name != b"__other__" or any(f.values())]
        yield from function_families(functions, self.clock())
        yield _gauge("mpgearman_functions_overflowed",
                     'Functions counted in function="__other__" (the table was full or '
                     "the name too long).", [], [([], counters.overflowed())])
        yield from _acceptor_families(counters, self.segment)
        yield _gauge("mpgearman_spool_bytes", "Bytes in spool files on disk now.", [],
                     [([], spool_bytes(self.spool_dir))])
        info = InfoMetricFamily("mpgearman_build",
                                'The version, and implementation="c" for the C '
                                'extensions, "python" for their pure-Python twins '
                                "(about three times slower); core: the coordinator's core, "
                                '"c" or "python".')
        info.add_metric([], {"version": __version__, "implementation": native.IMPLEMENTATION,
                             "core": native.CORE})
        yield info
        yield from _process_families(counters)
        yield from _journal_families(counters, self.clock())


def _journal_families(counters, now: float) -> list:
    """The journal of background jobs (none with --durability none)."""
    journal = counters.journal()
    if journal is None:
        return []
    size, live, synced_us, sync_us = journal
    return [
        _gauge("mpgearman_journal_bytes", "Bytes in the journal file.", [], [([], size)]),
        _gauge("mpgearman_journal_live_jobs", "Background jobs the journal keeps.", [],
               [([], live)]),
        _gauge("mpgearman_journal_seconds_since_sync", "Seconds since the journal's last "
               "fdatasync.", [], [([], max(0.0, now - synced_us / 1e6))]),
        _gauge("mpgearman_journal_sync_latency_seconds", "Duration of the last fdatasync.",
               [], [([], sync_us / 1e6)]),
    ]


def registry(counters, segment, spool_dir: str) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(Collector(counters, segment, spool_dir))
    return reg


def render(counters, segment, spool_dir: str) -> bytes:
    """The text format 0.0.4 (what a scrape without an Accept header gets)."""
    return generate_latest(registry(counters, segment, spool_dir))


def ring_used(segment, acceptor: int, direction: str) -> int:
    """tail - head of one ring, read from its control block."""
    index = (L.inbound_index if direction == "inbound" else L.outbound_index)(acceptor)
    base = L.ring_offset(index, segment.ring_capacity) // 8
    q = memoryview(segment.buffer).cast("B").cast("Q")
    try:
        head, tail = q[base + L.RING_HEAD_OFF // 8], q[base + L.RING_TAIL_OFF // 8]
    finally:
        q.release()
    return max(tail - head, 0)


def spool_bytes(directory: str) -> int:
    """Bytes of the files in the spool (a payload shared by hard links
    counts once), partial files included."""
    seen, total = set(), 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue      # sent and unlinked meanwhile
        if entry.name != "lock" and entry.is_file(follow_symlinks=False) \
                and st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_size
    return total



# -- HTTP -----------------------------------------------------------------------

def app(reg):
    """The WSGI application: /metrics by prometheus_client, GET and HEAD."""
    metrics_app = make_wsgi_app(reg)

    def serve(environ, start_response):
        method = environ["REQUEST_METHOD"]
        if environ.get("PATH_INFO") != "/metrics":
            return _plain(start_response, "404 Not Found", "Only /metrics is served here\n")
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed",
                          "Use GET or HEAD\n", [("Allow", "GET, HEAD")])
        environ = dict(environ, REQUEST_METHOD="GET")
        answer = []
        try:
            body = b"".join(metrics_app(environ, lambda *a: answer.extend(a[:2])))
        except Exception:      # noqa: BLE001 - one failed scrape, not a dead process
            logger.exception("rendering the metrics failed")
            return _plain(start_response, "500 Internal Server Error",
                          "Rendering the metrics failed; see the server log\n",
                          exc_info=True)
        status, headers = answer
        # HEAD: the headers GET would have, Content-Length included.
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [] if method == "HEAD" else [body]
    return serve


def _plain(start_response, status, text, headers=(), exc_info=False):
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body))), *headers],
                   sys.exc_info() if exc_info else None)
    return [body]


class _Response(ServerHandler):
    """HTTP/1.1 answers; each connection serves one request and says so."""
    http_version = "1.1"
    server_software = "mpgearman-metrics"

    def cleanup_headers(self):
        super().cleanup_headers()
        self.headers["Connection"] = "close"
        if "Content-Length" not in self.headers:
            self.set_content_length()


class Handler(WSGIRequestHandler):
    timeout = 10            # a client that stalls mid-request is dropped
    server_version, sys_version = "mpgearman-metrics", ""

    def handle(self):
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _Response(self.rfile, self.wfile, self.get_stderr(), self.get_environ(),
                            multithread=True)
        handler.request_handler = self
        handler.run(self.server.get_app())

    def log_message(self, fmt, *args):
        logger.debug("%s %s", self.address_string(), fmt % args)


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def __init__(self, sock, application):
        super().__init__(sock.getsockname()[:2], Handler, bind_and_activate=False)
        self.socket.close()
        self.socket, self.address_family = sock, sock.family
        self.server_name, self.server_port = "mpgearman", sock.getsockname()[1]
        self.setup_environ()
        self.set_app(application)


def run(config, segment, counters, sock) -> int:
    """Body of the `mpg-metrics` process. SIGTERM ends it where it stands:
    it holds nothing that needs cleaning up."""
    process.set_name("mpg-metrics")
    log.setup(config.log_level, "metrics")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    segment.check()
    counters.check().start_process(L.CTR_METRICS, os.getpid())
    sock.listen(64)
    server = Server(sock, app(registry(counters, segment, config.spool_dir)))
    server.serve_forever()
    return 0
