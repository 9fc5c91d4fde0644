"""Asking a job server how it is doing, over the admin text protocol.

Owns: the connection (one, bounded by a timeout), sending admin commands
and reading their replies, parsing them, and turning one or two samples
into a snapshot dict (the document `stat --json` prints).

Works with gearmand and mpgearman alike: `status`, `prioritystatus`,
`workers` and `version` exist on both; mpgearman's own `stats` command adds
uptime, job counters and per-process figures, and gearmand's "unknown
command" answer to it is how the two are told apart.

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


def _stats(admin: Admin) -> dict | None:
    """mpgearman's `stats` as a dict, None from a server without it."""
    reply = admin.command("stats")
    if isinstance(reply, bytes):
        if reply.startswith(b"ERR UNKNOWN_COMMAND"):
            return None
        raise ProbeError(f"{admin.where} answered 'stats' with {_name(reply)!r}")
    return dict(_name(line).split(" ", 1) for line in reply if b" " in line)


def parse_scheduled(lines: list) -> tuple:
    """({name: future epoch jobs}, [unreadable]) from mpgearman's `scheduled`."""
    counts, bad = {}, []
    for line in lines:
        try:
            name, count = line.rsplit(b"\t", 1)
            counts[_name(name)] = int(count)
        except ValueError:
            bad.append(_unreadable("scheduled", line))
    return counts, bad


def _scheduled(admin: Admin) -> tuple:
    """mpgearman's `scheduled`; (None, []) from a server without it."""
    reply = admin.command("scheduled")
    if isinstance(reply, bytes):
        return None, []
    return parse_scheduled(reply)


def sample(admin: Admin) -> dict:
    """One look at the server: raw figures and the time they were taken."""
    try:
        version = admin.command("version")
        functions, unreadable, priorities = _functions(admin)
        workers, bad = parse_workers(_listing(admin.command("workers"), "workers",
                                              admin.where))
        stats = _stats(admin)
        # only an mpgearman is asked: gearmand would log an unknown command
        scheduled, bad2 = _scheduled(admin) if stats is not None else (None, [])
        return {"at": time.monotonic(), "functions": functions,
                "unreadable": unreadable + bad + bad2,
                "worker_connections": workers, "stats": stats,
                "priorities": priorities, "scheduled": scheduled,
                "version": _name(version[3:]) if version.startswith(b"OK ") else None}
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
