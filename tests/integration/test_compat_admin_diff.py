"""Differential tests of the admin text protocol and the binary error replies.

Each conversation below is a script of raw requests with the reply gearmand
1.1.20 gives (PROTOCOL.md sections 1.5, 3.16, 4). It runs twice:

- [gearmand]: against Debian's gearmand, every reply must equal the one
  written in the script (this keeps the script honest);
- [mpgearman]: against mpgearman *and* gearmand, both started in the test,
  and the two transcripts must be identical byte for byte (when gearmand is
  not installed, mpgearman is held to the scripted replies instead).

Only the host part of job handles, `getpid` and `version` values, and the
fd column of `workers` are normalised; listings with several entries are
compared with their lines sorted (their order is hash order in gearmand).

The places where mpgearman deliberately differs (PROTOCOL.md section 6:
`create function` with a bare LF, `drop function` with queued jobs, the
WORK_FAIL made from a WORK_EXCEPTION, an ERROR before closing on a fatal
header) are tested separately at the end.
"""
from __future__ import annotations

import os
import re
import shutil
import time

import pytest

from gearproto import Conn, PacketType as T, normalise, parse_status, request, wait_for

GEARMAND_INSTALLED = bool(shutil.which("gearmand") or os.access("/usr/sbin/gearmand", os.X_OK))
CLOSED = b"<connection closed>"
NOTHING = b"<nothing>"
ERR_UNKNOWN = b"ERR UNKNOWN_COMMAND Unknown+server+command"
ERR_ARGS = b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+"
_FD = re.compile(rb"^\d+ ", re.M)


def res(ptype: int, *args: bytes) -> bytes:
    """Expected raw response packet."""
    return request(ptype, *args).replace(b"\0REQ", b"\0RES", 1)


def sort_listing(data: bytes) -> bytes:
    """Lines of a `.`-terminated listing in sorted order."""
    if not data.endswith(b".\n"):
        return data
    lines = data[:-2].split(b"\n")[:-1]
    return b"".join(line + b"\n" for line in sorted(lines)) + b".\n"


class Convo:
    """Runs one scripted conversation; collects (label, got) and
    (label, want) for every step."""

    def __init__(self, srv, fn: str):
        self.srv = srv
        self.fn = fn.encode()
        self.got: list[tuple[str, bytes]] = []
        self.want: list[tuple[str, bytes]] = []
        self.conns: dict[str, Conn] = {}

    def conn(self, name: str = "a") -> Conn:
        if name not in self.conns:
            self.conns[name] = self.srv.connect()
        return self.conns[name]

    def close(self) -> None:
        for c in self.conns.values():
            c.close()

    def wait_workers(self, function: bytes, count: int) -> None:
        """Wait (bounded) until `status` on connection "a" shows `count`
        registrations of `function`: a CAN_DO sent on one connection need not
        be visible to another one at once. The polls are not recorded, and
        use no extra connection (it would show up in `workers`)."""
        name = function.decode()
        wait_for(lambda: parse_status(self.conn("a").admin(b"status")).get(
            name, (0, 0, 0))[2] >= count, 10, 0.02, f"{count} workers of {name}")

    def record(self, label: str, got: bytes, want: bytes, sort: bool = False,
               fds: bool = False) -> None:
        got = normalise(got, pid=True, version=True)
        if fds:
            got = _FD.sub(b"FD ", got)
        if sort:
            got, want = sort_listing(got), sort_listing(want)
        self.got.append((label, got))
        self.want.append((label, want))

    def admin(self, line: bytes, want: bytes, conn: str = "a", **kw) -> bytes:
        c = self.conn(conn)
        try:
            got = c.admin(line)
        except AssertionError:       # gearproto.ConnectionClosed
            got = CLOSED
        # the handle in "cancel job H:<host>[:<port>]:<n>" differs by server
        self.record(f"{conn}> {normalise(line)!r}", got, want, **kw)
        return got

    def packet(self, ptype: int, *args: bytes, want: bytes, conn: str = "a") -> bytes:
        c = self.conn(conn)
        c.send_packet(ptype, *args)
        got = c.read_packet().raw
        self.record(f"{conn}> {T(ptype).name} {args!r}", got, want)
        return got

    def raw(self, data: bytes, want: bytes, conn: str = "a", quiet: float = 0.2) -> bytes:
        """Send raw bytes; the reply is what arrives until at least as much
        as `want` is there (bounded) and the line stays quiet, plus CLOSED
        if the server hangs up. A CLOSED expectation waits for the close."""
        c = self.conn(conn)
        c.send(data)
        deadline = time.monotonic() + 5
        closed = False
        while not closed and time.monotonic() < deadline:
            got = normalise(c.buf, pid=True, version=True)
            if not want.endswith(CLOSED) and len(got) >= len(want):
                closed = c.is_closed(quiet)     # nothing more may follow
                break
            closed = c.is_closed(min(0.05, max(deadline - time.monotonic(), 0.001)))
        got = c.buf + (CLOSED if closed else b"")
        c.buf = b""
        self.record(f"{conn}> raw {data!r}", got or NOTHING, want)
        return got

    def submit(self, ptype: int, unique: bytes, data: bytes, handle: int,
               conn: str = "a", fn: bytes | None = None) -> None:
        self.packet(ptype, fn or self.fn, unique, data, conn=conn,
                    want=res(T.JOB_CREATED, b"H:HOST:%d" % handle))


# ---------------------------------------------------------------------------
# the conversations

def convo_empty_listings(c: Convo) -> None:
    """A fresh server lists nothing."""
    for cmd in (b"status", b"prioritystatus", b"show jobs", b"show unique jobs"):
        c.admin(cmd, b".\n")


def convo_queued_jobs(c: Convo) -> None:
    """status/prioritystatus/show jobs/show unique jobs with queued jobs of a
    fresh function; coalescing returns the existing handle."""
    f = c.fn
    c.submit(T.SUBMIT_JOB_BG, b"u1", b"d1", 1)
    c.submit(T.SUBMIT_JOB_HIGH_BG, b"", b"d2", 2)
    c.submit(T.SUBMIT_JOB_LOW_BG, b"-", b"d3", 3)
    c.submit(T.SUBMIT_JOB_LOW, b"u2", b"d4", 4, conn="fg")       # foreground, stays open
    c.submit(T.SUBMIT_JOB_HIGH, b"u1", b"other", 1, conn="fg")  # coalesces with the bg job
    c.admin(b"status", f + b"\t4\t0\t0\n.\n")
    c.admin(b"prioritystatus", f + b"\t1\t1\t2\t0\n.\n")
    c.conn("w").send_packet(T.CAN_DO, f)
    c.admin(b"status", f + b"\t4\t0\t1\n.\n", conn="w")
    c.admin(b"prioritystatus", f + b"\t1\t1\t2\t1\n.\n")
    c.admin(b"show jobs", b"H:HOST:1\t0\t0\t1\nH:HOST:2\t0\t0\t1\n"
            b"H:HOST:3\t0\t0\t1\nH:HOST:4\t0\t0\t0\n.\n", sort=True)
    c.admin(b"show unique jobs", b"u1\n\n-\nu2\n.\n", sort=True)
    # a worker takes the high job: it becomes running
    c.packet(T.GRAB_JOB_UNIQ, conn="w",
             want=res(T.JOB_ASSIGN_UNIQ, b"H:HOST:2", f, b"", b"d2"))
    c.admin(b"status", f + b"\t4\t1\t1\n.\n")
    c.admin(b"prioritystatus", f + b"\t0\t1\t2\t1\n.\n")
    c.admin(b"show jobs", b"H:HOST:1\t0\t0\t1\nH:HOST:2\t0\t0\t1\n"
            b"H:HOST:3\t0\t0\t1\nH:HOST:4\t0\t0\t0\n.\n", sort=True)


def convo_case_and_extra_words(c: Convo) -> None:
    """Command words are case-insensitive; extra words are ignored."""
    c.admin(b"create function " + c.fn + b"\r", b"OK\r\n")
    line = c.fn + b"\t0\t0\t0\n.\n"
    c.admin(b"STATUS", line)
    c.admin(b"status a b c d", line)
    c.admin(b"Status\r", line)
    c.admin(b"SHOW JOBS", b".\n")
    c.admin(b"show UNIQUE jobs", b".\n")


def convo_workers(c: Convo) -> None:
    """`workers`: one line per connection, newest registration first, client
    id verbatim (fd column normalised)."""
    f = c.fn
    c.conn("w1").send_packet(T.CAN_DO, f + b"a")
    c.conn("w1").send_packet(T.CAN_DO, f + b"b")
    c.conn("w2").send_packet(T.SET_CLIENT_ID, b"my id with spaces")
    c.conn("w2").send_packet(T.CAN_DO, f + b"a")
    c.conn("w2").send_packet(T.CAN_DO, f + b"a")
    c.wait_workers(f + b"a", 3)
    c.wait_workers(f + b"b", 1)
    c.admin(b"workers", b"FD 127.0.0.1 - :\n"
            b"FD 127.0.0.1 - : " + f + b"b " + f + b"a\n"
            b"FD 127.0.0.1 my id with spaces : " + f + b"a " + f + b"a\n.\n",
            sort=True, fds=True)
    c.admin(b"status", f + b"a\t0\t0\t3\n" + f + b"b\t0\t0\t1\n.\n", sort=True)


def convo_unknown_commands(c: Convo) -> None:
    """Unknown command, empty line, leading space, `show` forms, shutdown."""
    c.admin(b"bogus", ERR_UNKNOWN + b"bogus\r\n")
    c.admin(b"", ERR_UNKNOWN + b"\r\n")
    c.admin(b"\r", ERR_UNKNOWN + b"\r\n")
    c.admin(b" status", ERR_UNKNOWN + b"\r\n")
    c.admin(b"show", ERR_UNKNOWN + b"show\r\n")
    c.admin(b"show foo", b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n")
    c.admin(b"show unique", b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n")
    c.admin(b"version", b"OK VERSION\n")
    c.admin(b"getpid", b"OK PID\n")


def convo_shutdown(c: Convo) -> None:
    """`shutdown` was removed in 1.1.15; the server keeps running."""
    c.admin(b"shutdown", ERR_UNKNOWN + b"shutdown\r\n")
    c.admin(b"shutdown graceful", ERR_UNKNOWN + b"shutdown\r\n")
    c.admin(b"SHUTDOWN\r", ERR_UNKNOWN + b"SHUTDOWN\r\n")
    c.admin(b"version", b"OK VERSION\n", conn="b")


def convo_cancel(c: Convo) -> None:
    """cancel job: not found, found (twice), and the malformed forms."""
    c.admin(b"cancel job nosuch", b"ERR UNKNOWN_JOB\r\n")
    c.admin(b"cancel job H:nohost:999", b"ERR UNKNOWN_JOB\r\n")
    c.admin(b"cancel", ERR_UNKNOWN + b"cancel\r\n")
    c.admin(b"cancel job", ERR_UNKNOWN + b"cancel\r\n")
    c.admin(b"cancel a b", b"ERR UNKNOWN_ERROR\r\n")
    c.admin(b"cancel a b c", b"ERR UNKNOWN_ERROR\r\n")
    c.admin(b"cancel job a b", b"ERR UNKNOWN_ERROR\r\n")
    c.submit(T.SUBMIT_JOB_BG, b"", b"x", 1)
    handle = c.conn().admin(b"show jobs").split(b"\t")[0]
    c.admin(b"cancel job " + handle, b"OK\r\n")
    c.admin(b"cancel job " + handle, b"OK\r\n")
    c.admin(b"CANCEL JOB " + handle + b"\r", b"OK\r\n")


def convo_cancel_notifies_client(c: Convo) -> None:
    """Cancelling a foreground job sends WORK_FAIL (bare handle) to its client."""
    c.submit(T.SUBMIT_JOB, b"", b"x", 1, conn="fg")
    c.admin(b"cancel job " + c.conn("fg").admin(b"show jobs").split(b"\t")[0], b"OK\r\n")
    got = c.conn("fg").read_packet().raw
    c.record("fg< after cancel", got, res(T.WORK_FAIL, b"H:HOST:1"))


def convo_maxqueue(c: Convo) -> None:
    """maxqueue forms, and the queue-full error."""
    f = c.fn
    c.admin(b"maxqueue", ERR_ARGS + b"maxqueue\r\n")
    c.admin(b"maxqueue " + f + b"nosuch 5", b"OK\r\n")
    c.admin(b"maxqueue " + f, b"OK\r\n")
    c.admin(b"status", b".\n")                       # maxqueue creates nothing
    c.submit(T.SUBMIT_JOB_BG, b"", b"1", 1)
    c.admin(b"maxqueue " + f + b" 1 2", b"OK\r\n")
    c.admin(b"maxqueue " + f + b" 1 2 3", b"OK\r\n")
    c.admin(b"maxqueue " + f + b" 1", b"OK\r\n")
    c.packet(T.SUBMIT_JOB_BG, f, b"", b"2",
             want=res(T.ERROR, b"QUEUE_ERROR", b"Job queue is full"))
    c.packet(T.SUBMIT_JOB_HIGH_BG, f, b"", b"3",
             want=res(T.ERROR, b"QUEUE_ERROR", b"Job queue is full"))
    c.admin(b"maxqueue " + f + b" 0 1 0", b"OK\r\n")  # only normal limited
    c.submit(T.SUBMIT_JOB_HIGH_BG, b"", b"4", 2)     # rejections used no number
    c.packet(T.SUBMIT_JOB_BG, f, b"", b"5",
             want=res(T.ERROR, b"QUEUE_ERROR", b"Job queue is full"))
    c.admin(b"maxqueue " + f + b" -3", b"OK\r\n")     # negative -> unlimited
    c.submit(T.SUBMIT_JOB_LOW_BG, b"", b"6", 3)
    c.admin(b"status", f + b"\t3\t0\t0\n.\n")


def convo_create_drop(c: Convo) -> None:
    """create function with CRLF, drop function forms."""
    f = c.fn
    c.admin(b"create function " + f + b"\r", b"OK\r\n")
    c.admin(b"status", f + b"\t0\t0\t0\n.\n")
    c.admin(b"create function", ERR_ARGS + b"create\r\n")
    c.admin(b"drop function", ERR_ARGS + b"drop\r\n")
    c.admin(b"drop function nosuch\r", b"ERR function not found\r\n")
    c.admin(b"drop function " + f + b"\r", b"OK\r\n")
    c.admin(b"status", b".\n")
    c.admin(b"drop function " + f + b"\r", b"ERR function not found\r\n")
    # the name match of drop is case-insensitive
    c.admin(b"create function Mixed" + f + b"\r", b"OK\r\n")
    c.admin(b"drop function mIXED" + f + b"\r", b"OK\r\n")
    c.admin(b"status", b".\n")
    # a function with a registered worker cannot be dropped
    c.conn("w").send_packet(T.CAN_DO, f + b"w")
    c.wait_workers(f + b"w", 1)
    c.admin(b"drop function " + f + b"w\r",
            b"ERR there are still connected workers or executing clients\r\n")
    c.admin(b"status", f + b"w\t0\t0\t1\n.\n")


def convo_mixed_binary_text(c: Convo) -> None:
    """PROTOCOL.md 1.5: text and binary interleaved on one connection."""
    c.raw(b"version\r\n" + request(T.ECHO_REQ, b"mixed") + b"getpid\n",
          b"OK VERSION\n" + res(T.ECHO_RES, b"mixed") + b"OK PID\n")
    c.raw(request(T.ECHO_REQ, b"a\0b") + b"status\n" + request(T.ECHO_REQ, b""),
          res(T.ECHO_RES, b"a\0b") + b".\n" + res(T.ECHO_RES, b""))
    c.raw(b"bogus\n" + request(T.OPTION_REQ, b"exceptions"),
          ERR_UNKNOWN + b"bogus\r\n" + res(T.OPTION_RES, b"exceptions"))


INVALID_COMMAND = res(T.ERROR, b"INVALID_COMMAND", b"Command not expected")
INVALID_MAGIC = res(T.ERROR, b"INVALID_MAGIC", b"Request magic expected")


def convo_binary_errors(c: Convo) -> None:
    """INVALID_MAGIC and INVALID_COMMAND keep the connection open."""
    from mpgearman.protocol.packets import ARGS
    c.packet(T.ECHO_REQ, b"x", want=res(T.ECHO_RES, b"x"))
    c.raw(request(T.ECHO_REQ, b"x").replace(b"\0REQ", b"\0RES", 1), INVALID_MAGIC)
    c.raw(request(T.SUBMIT_JOB, c.fn, b"", b"x").replace(b"\0REQ", b"\0RES", 1),
          INVALID_MAGIC)
    for ptype in (5, 6, 8, 10, 11, 17, 19, 20, 24, 27, 31, 35, 40, 42):
        argc, has_data = ARGS[ptype]
        args = [b"a"] * (argc + has_data)
        c.packet(ptype, *args, want=INVALID_COMMAND)
    c.packet(T.ECHO_REQ, b"still open", want=res(T.ECHO_RES, b"still open"))
    c.admin(b"status", b".\n")    # SUBMIT_JOB_SCHED created nothing


CONVOS = {name[len("convo_"):]: fn for name, fn in globals().items()
          if name.startswith("convo_")}


def run(name: str, srv, fn: str) -> Convo:
    convo = Convo(srv, fn)
    try:
        CONVOS[name](convo)
    finally:
        convo.close()
    return convo


def steps(pairs):
    return [f"{label}: {data!r}" for label, data in pairs]


@pytest.mark.parametrize("target", ["mpgearman", "gearmand"])
@pytest.mark.parametrize("name", sorted(CONVOS))
def test_admin_conversation(name, target, server_factory, fname):
    if target == "gearmand":
        reference = run(name, server_factory("gearmand"), fname)
        assert steps(reference.got) == steps(reference.want)
        return
    ours = run(name, server_factory("mpgearman"), fname)
    if GEARMAND_INSTALLED:
        reference = run(name, server_factory("gearmand"), fname)
        assert steps(ours.got) == steps(reference.got)
    else:
        assert steps(ours.got) == steps(ours.want)


# ---------------------------------------------------------------------------
# deliberate differences (PROTOCOL.md section 6)

def test_create_function_bare_lf(server, fname):
    """gearmand drops the last byte of the name on a bare-LF line (quirk,
    section 4.2/6 #10); mpgearman creates the name as written."""
    with server.connect() as c:
        assert c.admin(b"create function " + fname.encode() + b"\n") == b"OK\r\n"
        status = c.admin(b"status")
    name = fname[:-1] if server.kind == "gearmand" else fname
    assert status == f"{name}\t0\t0\t0\n.\n".encode()


def test_drop_function_with_queued_jobs(server, fname):
    """gearmand drops a function whose jobs are still queued (unsafe, 6 #10);
    mpgearman refuses and keeps the jobs."""
    f = fname.encode()
    with server.connect() as c:
        c.submit(T.SUBMIT_JOB_BG, f, b"", b"1")
        c.submit(T.SUBMIT_JOB_BG, f, b"", b"2")
        reply = c.admin(b"drop function " + f + b"\r")
        status = c.admin(b"status")
    if server.kind == "gearmand":
        assert reply == b"OK\r\n"
        assert status == b".\n"
    else:
        assert reply.startswith(b"ERR ") and reply.endswith(b"\r\n")
        assert status == f + b"\t2\t0\t0\n.\n"


@pytest.mark.parametrize("exceptions", [False, True], ids=["plain", "exceptions"])
def test_work_exception_forwarding(server, fname, exceptions):
    """WORK_EXCEPTION reaches a client with the `exceptions` option as is;
    other clients get WORK_FAIL: gearmand's carries a trailing NUL (6 #16),
    mpgearman's is the bare handle."""
    f = fname.encode()
    with server.connect() as client, server.connect() as worker:
        if exceptions:
            client.send_packet(T.OPTION_REQ, b"exceptions")
            client.expect(T.OPTION_RES, b"exceptions")
        handle = client.submit(T.SUBMIT_JOB, f, b"", b"x")
        worker.send_packet(T.CAN_DO, f)
        worker.send_packet(T.GRAB_JOB)
        worker.expect(T.JOB_ASSIGN, handle + b"\0" + f + b"\0x")
        worker.send_packet(T.WORK_EXCEPTION, handle, b"boom")
        pkt = client.read_packet()
        if exceptions:
            assert (pkt.type, pkt.payload) == (T.WORK_EXCEPTION, handle + b"\0boom")
        elif server.kind == "gearmand":
            assert (pkt.type, pkt.payload) == (T.WORK_FAIL, handle + b"\0")
        else:
            assert (pkt.type, pkt.payload) == (T.WORK_FAIL, handle)
        client.assert_silent()
        # the job is gone either way
        worker.send_packet(T.WORK_COMPLETE, handle, b"late")
        worker.expect(T.ERROR, b"JOB_NOT_FOUND\0Job given in work result not found")


FATAL_HEADERS = {
    "magic": (b"\0XYZ" + b"\0\0\0\x10\0\0\0\0", b"INVALID_MAGIC"),
    "type0": (b"\0REQ" + b"\0\0\0\0\0\0\0\0", b"INVALID_COMMAND"),
    "type43": (b"\0REQ" + b"\0\0\0\x2b\0\0\0\0", b"INVALID_COMMAND"),
}


@pytest.mark.parametrize("case", sorted(FATAL_HEADERS))
def test_fatal_header_closes_the_connection(server, case):
    """Bad magic, type 0 and type >= 43 close the connection: gearmand sends
    nothing first; mpgearman says why with an ERROR packet, then closes."""
    data, code = FATAL_HEADERS[case]
    with server.connect() as c:
        c.send(data)
        assert c.is_closed(5)
        got = c.buf
    if server.kind == "gearmand":
        assert got == b""
    else:
        assert got.startswith(b"\0RES\0\0\0\x13") and got[12:].split(b"\0")[0] == code
    assert server.admin("status").endswith(b".\n")
