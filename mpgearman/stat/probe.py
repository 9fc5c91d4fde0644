"""Asking a job server how it is doing, over the admin text protocol.

Owns: the connection (one, bounded by a timeout), sending admin commands
and reading their replies, parsing them, and turning one or two samples
into a snapshot dict (the document `stat --json` prints).

Works with gearmand and mpgearman alike. mpgearman answers everything in
its own `stats` command, taken in one go by the coordinator, so every
figure of a sample is from one moment (QUEUED is HIGH + NORMAL + LOW and
the totals add up): uptime, job counters, per-process figures, and a line
per function with its queues, workers (busy and idle), the age of its
oldest queued job and its wait and run time histograms. gearmand answers
`stats` as an unknown command, which is how the two are told apart; it is
then asked `status`, `prioritystatus`, `workers` and `version` in turn.

A line of `status`, `prioritystatus` or `workers` that does not parse is
kept in the sample's "unreadable" list and the rest is read: gearmand
prints function names raw, so one name with a newline cuts its line in two
(mpgearman escapes such bytes, README "Compatibility").

Must not: print, decide exit codes or thresholds (render.py and the
command do).
"""
import re
import socket
import time

DEFAULT_PORT = 4730
JOB_COUNTERS = ("submitted", "completed", "failed", "exceptions", "requeued")
PRIORITIES = ("high", "normal", "low")


class ProbeError(Exception):
    """The server could not be asked: the message is one line for a human."""


def parse_server(text: str) -> tuple:
    """HOST, HOST:PORT, [IPV6]:PORT or a bare IPv6 address -> (host, port)."""
    text = text.strip()
    host, port = text, DEFAULT_PORT
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        port = int(port)
    except ValueError:
        raise ValueError(f"{text!r}: the port must be a number") from None
    if not host or not 0 < port < 65536:
        raise ValueError(f"{text!r} is not HOST[:PORT]")
    return host, port


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


class Admin:
    """One admin connection; each command's reply is read whole."""

    def __init__(self, host: str, port: int, timeout: float):
        self.where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.deadline_step = timeout
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except socket.timeout:
            raise ProbeError(f"cannot connect to {self.where}: timed out") from None
        except OSError as exc:
            raise ProbeError(f"cannot connect to {self.where}: "
                             f"{exc.strerror or exc}") from None
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _line(self, deadline: float) -> bytes:
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProbeError(f"{self.where} did not answer within "
                                 f"{self.deadline_step:g} s")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as exc:
                raise ProbeError(f"{self.where}: {exc.strerror or exc}") from None
            if not data:
                raise ProbeError(f"{self.where} closed the connection")
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.removesuffix(b"\r")

    def command(self, line: str) -> list | bytes:
        """The lines of a listing (without the "."), or the single line of
        an OK/ERR answer as bytes."""
        try:
            self.sock.sendall(line.encode() + b"\r\n")
        except OSError as exc:
            raise ProbeError(f"{self.where}: {exc.strerror or exc}") from None
        deadline = time.monotonic() + self.deadline_step
        first = self._line(deadline)
        if first.startswith((b"OK", b"ERR ")):
            return first
        lines = []
        while first != b".":
            lines.append(first)
            first = self._line(deadline)
        return lines


def _listing(reply, command: str, where: str) -> list:
    if isinstance(reply, bytes):
        raise ProbeError(f"{where} answered {command!r} with {_name(reply)!r}")
    return reply


def _unreadable(command: str, line: bytes) -> dict:
    return {"command": command, "line": _name(line)}


def parse_status(lines: list) -> tuple:
    """({name: figures}, [unreadable]) from the lines of `status`. A line
    that does not parse (gearmand prints a name with a newline raw, which
    cuts its line in two) is listed, never fatal."""
    functions, bad = {}, []
    for line in lines:
        try:
            name, total, running, workers = line.rsplit(b"\t", 3)
            total, running, workers = int(total), int(running), int(workers)
        except ValueError:
            bad.append(_unreadable("status", line))
            continue
        functions[_name(name)] = {"queued": max(total - running, 0),
                                  "queued_by_priority": None,
                                  "running": running, "workers": workers}
    return functions, bad


def parse_prioritystatus(lines: list, functions: dict) -> list:
    """Fill in queued_by_priority from the lines of `prioritystatus`;
    returns the lines that do not parse."""
    bad = []
    for line in lines:
        try:
            name, high, normal, low, _ = line.rsplit(b"\t", 4)
            by_prio = dict(zip(PRIORITIES, map(int, (high, normal, low))))
        except ValueError:
            bad.append(_unreadable("prioritystatus", line))
            continue
        fn = functions.get(_name(name))
        if fn is not None:
            fn["queued_by_priority"] = by_prio
    return bad


def _functions(admin: Admin) -> tuple:
    """(functions, unreadable lines, whether `prioritystatus` answered)."""
    functions, bad = parse_status(_listing(admin.command("status"), "status", admin.where))
    reply = admin.command("prioritystatus")
    if isinstance(reply, list):
        bad += parse_prioritystatus(reply, functions)
    return functions, bad, isinstance(reply, list)


_WORKERS_LINE = re.compile(rb"\d+ \S+ .* :")


def parse_workers(lines: list) -> tuple:
    """(connections that registered at least one function, [unreadable])
    from the lines of `workers` ("FD PEER CLIENT_ID : FUNCTION ...")."""
    count, bad = 0, []
    for line in lines:
        if _WORKERS_LINE.match(line) is None:
            bad.append(_unreadable("workers", line))
        elif not line.endswith(b" :"):
            count += 1
    return count, bad


def _stats(admin: Admin) -> list | None:
    """The lines of mpgearman's `stats`, None from a server without it."""
    reply = admin.command("stats")
    if isinstance(reply, bytes):
        if reply.startswith(b"ERR UNKNOWN_COMMAND"):
            return None
        raise ProbeError(f"{admin.where} answered 'stats' with {_name(reply)!r}")
    return reply


def _histogram(text: bytes, bounds: list) -> dict:
    """A `stats` histogram field (bucket counts then the sum, or "0") ->
    {count, sum_seconds, buckets: {upper bound: cumulative count}}."""
    if text == b"0":
        return {"count": 0, "sum_seconds": 0.0,
                "buckets": dict.fromkeys([*bounds, "+Inf"], 0)}
    *counts, total = text.split(b",")
    if len(counts) != len(bounds) + 1:
        raise ValueError("histogram of the wrong size")
    running, buckets = 0, {}
    for bound, n in zip([*bounds, "+Inf"], counts):
        running += int(n)
        buckets[bound] = running
    return {"count": running, "sum_seconds": float(total), "buckets": buckets}


def parse_function_line(line: bytes, bounds: list) -> tuple:
    """(name, figures) from a `function` line of mpgearman's `stats`."""
    (_, name, high, normal, low, running, workers, busy, idle, epoch, age, wait,
     run) = line.split(b"\t")
    by_prio = dict(zip(PRIORITIES, map(int, (high, normal, low))))
    return _name(name), {
        "queued": sum(by_prio.values()), "queued_by_priority": by_prio,
        "running": int(running), "workers": int(workers), "busy_workers": int(busy),
        "idle_workers": int(idle), "epoch_waiting": int(epoch),
        "oldest_age_seconds": None if age == b"-" else float(age),
        "wait_seconds": _histogram(wait, bounds), "run_seconds": _histogram(run, bounds)}


def from_stats(lines: list) -> dict:
    """A sample's figures from the lines of one `stats` answer."""
    stats, rows = {}, []
    for line in lines:
        if line.startswith(b"function\t"):
            rows.append(line)
        elif b" " in line:
            key, value = _name(line).split(" ", 1)
            stats[key] = value
    bounds = [b for b in stats.get("latency_buckets", "").split(",") if b]
    functions, bad = {}, []
    for line in rows:
        try:
            name, figures = parse_function_line(line, bounds)
        except ValueError:
            bad.append(_unreadable("stats", line))
            continue
        functions[name] = figures
    return {"functions": functions, "unreadable": bad, "stats": stats,
            "worker_connections": int(stats.get("worker_connections", 0)),
            "priorities": True,
            "scheduled": {name: fn["epoch_waiting"] for name, fn in functions.items()},
            "version": stats.get("version")}


def _gearmand_sample(admin: Admin) -> dict:
    version = admin.command("version")
    functions, unreadable, priorities = _functions(admin)
    workers, bad = parse_workers(_listing(admin.command("workers"), "workers",
                                          admin.where))
    return {"functions": functions, "unreadable": unreadable + bad,
            "worker_connections": workers, "stats": None,
            "priorities": priorities, "scheduled": None,
            "version": _name(version[3:]) if version.startswith(b"OK ") else None}


def sample(admin: Admin) -> dict:
    """One look at the server: raw figures and the time they were taken."""
    try:
        lines = _stats(admin)
        if lines is None:
            got = _gearmand_sample(admin)
        else:
            got = from_stats(lines)
            if "latency_buckets" not in got["stats"]:    # an older mpgearman
                got = {**_gearmand_sample(admin), "stats": got["stats"]}
        got["at"] = time.monotonic()
        return got
    except ValueError as exc:     # a line that does not parse: not a Gearman server?
        raise ProbeError(f"{admin.where} gave an answer that is not the admin "
                         f"protocol ({exc})") from None


def take(host: str, port: int, timeout: float, interval: float) -> tuple:
    """(first, second) samples `interval` seconds apart over one
    connection; second is None when interval is 0 or the server is not an
    mpgearman (only mpgearman has counters to make rates of)."""
    admin = Admin(host, port, timeout)
    try:
        first = sample(admin)
        second = None
        if interval > 0 and first["stats"] is not None:
            time.sleep(interval)
            second = sample(admin)
        return admin.where, first, second
    finally:
        admin.close()


def take_many(servers: list, timeout: float, interval: float) -> list:
    """take() for several (host, port) servers with one shared pause: a
    (where, first, second) triple per server, or the ProbeError of one
    that could not be asked, in the order given."""
    admins, out = [], []
    try:
        for host, port in servers:
            try:
                admins.append(Admin(host, port, timeout))
                out.append(None)
            except ProbeError as exc:
                admins.append(None)
                out.append(exc)
        firsts = [_sample_or_error(a) if a is not None else None for a in admins]
        again = interval > 0 and any(isinstance(f, dict) and f["stats"] is not None
                                     for f in firsts)
        if again:
            time.sleep(interval)
        for i, (admin, first) in enumerate(zip(admins, firsts)):
            if out[i] is not None:
                continue
            if isinstance(first, ProbeError):
                out[i] = first
                continue
            second = _sample_or_error(admin) if again and first["stats"] is not None else None
            out[i] = second if isinstance(second, ProbeError) else (admin.where, first, second)
        return out
    finally:
        for admin in admins:
            if admin is not None:
                admin.close()


def _sample_or_error(admin: Admin):
    try:
        return sample(admin)
    except ProbeError as exc:
        return exc
