"""Prometheus metrics: the `mpg-metrics` process and its text exposition.

Owns: the listening socket for `serve --metrics-port` on
`--metrics-listen` (bound by the
supervisor before it forks, so a taken port stops `serve` at once and a
scrape never races the start), the HTTP answers (GET /metrics in the text
format 0.0.4; 404 for any other path), and turning what shared memory and
/proc say into metric families at scrape time.

Must not: write to shared memory, talk to the coordinator or slow anyone
down: everything is read when a scrape asks, from the counters mapping
(ipc/counters.py), the ring control blocks, the spool directory and psutil.
"""
import http.server
import logging
import os
import signal
import socket

from . import log, native, process, procstat
from .ipc import layout as L

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOB_COUNTERS = {
    "submitted": "Jobs created by a submission (joining an existing job by its unique id does not count).",
    "completed": "Jobs ended by WORK_COMPLETE.",
    "failed": "Jobs ended by WORK_FAIL, or failed after --job-retries attempts.",
    "exceptions": "Jobs ended by WORK_EXCEPTION.",
    "requeued": "Jobs put back in their queue because their worker was lost or timed out.",
}


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


# -- the exposition -----------------------------------------------------------

def _label(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Metric families in the text format, each with HELP and TYPE once."""

    def __init__(self):
        self.lines = []

    def family(self, name, kind, help_text, samples) -> None:
        """samples: (labels dict, value) pairs; a family without samples is
        still declared, so a dashboard sees the name."""
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{text}}} {value}" if text else f"{name} {value}")

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def _function_families(out, functions) -> None:
    for field, help_text in JOB_COUNTERS.items():
        out.family(f"mpgearman_jobs_{field}_total", "counter", help_text,
                   [({"function": name}, f[field]) for name, f in functions])
    out.family("mpgearman_jobs_queued", "gauge",
               "Jobs waiting in a queue (future epoch jobs count as normal).",
               [({"function": name, "priority": prio}, f[f"queued_{prio}"])
                for name, f in functions for prio in ("high", "normal", "low")])
    out.family("mpgearman_jobs_running", "gauge", "Jobs assigned to a worker.",
               [({"function": name}, f["running"]) for name, f in functions])
    out.family("mpgearman_workers", "gauge",
               "Worker registrations (CAN_DO) for the function, busy or not.",
               [({"function": name}, f["workers"]) for name, f in functions])


def _acceptor_families(out, counters, segment) -> None:
    figures = counters.acceptor_figures()
    out.family("mpgearman_connections_open", "gauge", "Connections an acceptor holds.",
               [({"acceptor": i}, open_now) for i, _, open_now, _ in figures])
    out.family("mpgearman_connections_accepted_total", "counter",
               "Connections an acceptor accepted since it started.",
               [({"acceptor": i}, accepted) for i, accepted, _, _ in figures])
    out.family("mpgearman_spool_written_bytes_total", "counter",
               "Payload bytes an acceptor streamed into spool files since it started.",
               [({"acceptor": i}, spooled) for i, _, _, spooled in figures])
    out.family("mpgearman_ring_used_bytes", "gauge",
               "Bytes in flight in a shared-memory ring (inbound: acceptor to "
               "coordinator; outbound: coordinator to acceptor).",
               [({"acceptor": i, "direction": d}, ring_used(segment, i, d))
                for i, *_ in figures for d in ("inbound", "outbound")])
    out.family("mpgearman_ring_capacity_bytes", "gauge", "Data bytes per ring.",
               [({}, segment.ring_capacity)])


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


def render(counters, segment, spool_dir: str) -> bytes:
    out = Exposition()
    functions = [(name, f) for name, f in counters.functions()
                 if name != b"__other__" or any(f.values())]
    _function_families(out, functions)
    out.family("mpgearman_functions_overflowed", "gauge",
               'Functions counted in function="__other__" (the table was full or '
               "the name too long).", [({}, counters.overflowed())])
    _acceptor_families(out, counters, segment)
    out.family("mpgearman_spool_bytes", "gauge", "Bytes in spool files on disk now.",
               [({}, spool_bytes(spool_dir))])
    out.family("mpgearman_data_plane_info", "gauge",
               'Always 1; implementation="c" for the C extensions, "python" for '
               "their pure-Python twins (about three times slower).",
               [({"implementation": native.IMPLEMENTATION}, 1)])
    procs = procstat.sample(counters.processes())
    out.family("mpgearman_process_cpu_seconds_total", "counter",
               "User and system CPU time of a server process.",
               [({"role": r, "index": i}, round(cpu, 3)) for r, i, _, cpu, _ in procs])
    out.family("mpgearman_process_resident_memory_bytes", "gauge",
               "Resident memory of a server process.",
               [({"role": r, "index": i}, rss) for r, i, _, _, rss in procs])
    out.family("mpgearman_process_id", "gauge", "Pid of a server process.",
               [({"role": r, "index": i}, pid) for r, i, pid, _, _ in procs])
    return out.text()



# -- HTTP -----------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    timeout = 10            # a client that stalls mid-request is dropped
    server_version = "mpgearman-metrics"

    def do_GET(self):
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404, "Only /metrics is served here")
            return
        try:
            body = self.server.render()
        except Exception:       # noqa: BLE001 - one failed scrape, not a dead process
            logger.exception("rendering the metrics failed")
            self.send_error(500, "Rendering the metrics failed; see the server log")
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, fmt, *args):
        logger.debug("%s %s", self.address_string(), fmt % args)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock, render_fn):
        super().__init__(sock.getsockname()[:2], Handler, bind_and_activate=False)
        self.socket.close()
        self.socket, self.address_family = sock, sock.family
        self.render = render_fn


def run(config, segment, counters, sock) -> int:
    """Body of the `mpg-metrics` process. SIGTERM ends it where it stands:
    it holds nothing that needs cleaning up."""
    process.set_name("mpg-metrics")
    log.setup(config.log_level, "metrics")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    segment.check()
    counters.check().start_process(L.CTR_METRICS, os.getpid())
    sock.listen(64)
    server = Server(sock, lambda: render(counters, segment, config.spool_dir))
    server.serve_forever()
    return 0
