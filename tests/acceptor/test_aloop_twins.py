"""The acceptor's event loop in C and its Python twin, fed the same socket
conversations: the same records must reach the inbound ring, and the same
bytes (and end of stream) must come back from the outbound one."""
import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from looptwins import Harness, receive  # noqa: E402

pytest.importorskip("mpgearman.native._aloop")

HDR = struct.Struct(">4sII")


def req(ptype: int, body: bytes = b"", magic: bytes = b"\0REQ") -> bytes:
    return HDR.pack(magic, ptype, len(body)) + body


def res(ptype: int, body: bytes = b"") -> bytes:
    return HDR.pack(b"\0RES", ptype, len(body)) + body


# Each conversation: a list of steps for connection 0 (and more):
#   ("send", i, bytes)     the client i writes these bytes
#   ("reply", i, bytes)    the coordinator sends them to connection i
#   ("file", i, head, data)   ... a SENDFILE
#   ("close", i)           the coordinator closes connection i
#   ("hangup", i)          client i closes its socket
#   ("answered", i)        the coordinator has handled every record so far
CONVERSATIONS = {
    "echo and admin": [
        ("send", 0, req(16, b"hello") + b"status\r\nworkers\n" + req(7, b"f\0u\0data")),
        ("reply", 0, res(17, b"hello")), ("reply", 0, b".\n")],
    "coalesced small packets": [
        ("send", 0, b"".join(req(16, b"%d" % i) for i in range(200))),
        *[("reply", 0, res(17, b"%d" % i)) for i in range(200)]],
    "rejected then fine": [
        ("send", 0, req(16, b"abc", magic=b"\0RES") + req(6) + req(16, b"ok"))],
    "rejected at the end of a read": [("send", 0, req(6)), ("send", 0, req(16, b"x"))],
    "bad magic": [("send", 0, b"\0REX" + bytes(8) + req(16, b"never"))],
    "bad type": [("send", 0, req(16, b"a") + HDR.pack(b"\0REQ", 99, 0))],
    "too big": [("send", 0, HDR.pack(b"\0REQ", 7, 0xFFFFFFFF))],
    "missing argument": [("send", 0, req(1, b"") + req(7, b"fn"))],
    "arguments too long": [("send", 0, req(1, b"x" * 8193))],
    "line too long": [("send", 0, b"y" * 9000)],
    "byte at a time": [("send", 0, bytes([b])) for b in req(7, b"fn\0uq\0payload")],
    "streamed body": [
        ("send", 0, req(7, b"fn\0uq\0" + bytes(range(256)) * 40) + req(16, b"after"))],
    "streamed in pieces": [
        ("send", 0, req(7, b"fn\0uq\0" + b"z" * 9000)[:3000]),
        ("send", 0, req(7, b"fn\0uq\0" + b"z" * 9000)[3000:]), ("send", 0, req(16, b"x"))],
    "streamed echo without arguments": [("send", 0, req(16, b"e" * 5000))],
    "streamed arguments missing": [("send", 0, req(7, b"f" * 9000))],
    "truncated then gone": [("send", 0, req(7, b"fn\0uq\0part")[:15]), ("hangup", 0)],
    "coordinator closes": [
        ("send", 0, req(16, b"bye")), ("reply", 0, res(17, b"bye")), ("close", 0)],
    "two connections": [
        ("send", 0, req(16, b"one")), ("send", 1, req(16, b"two")),
        ("reply", 1, res(17, b"two")), ("reply", 0, res(17, b"one")), ("hangup", 1)],
    "spool file out": [
        ("send", 0, req(9)), ("file", 0, res(11, b"H:1\0")[:12], b"q" * 70000)],
    "status from the board": [
        ("send", 0, req(15, b"H:x:7")), ("answered", 0),
        ("send", 0, req(15, b"H:x:7") + req(15, b"H:x:8\0tail") + req(15, b"H:x:07")
         + req(15, b"H:y:7") + req(15, b"H:x:99999999999999999999999"))],
    "status waits for earlier answers": [
        ("send", 0, req(16, b"first") + req(15, b"H:x:7"))],
    "empty packet types": [("send", 0, req(4, b"ignored") + req(9) + req(9, b"zz"))],
}


def play(kind, steps, tmp_path):
    spool = tmp_path / kind
    spool.mkdir()
    h = Harness(kind, str(spool))
    socks, got, ended = {}, {}, {}
    files = 0
    records = []      # what each step made the loop publish
    try:
        for step in steps:
            i = step[1]
            if i not in socks:
                socks[i] = h.connect()
            if step[0] == "send":
                socks[i].sendall(step[2])
            elif step[0] == "hangup":
                socks[i].close()
            else:
                if step[0] == "reply":
                    h.send(i, step[2])
                elif step[0] == "answered":
                    h.answered()
                elif step[0] == "file":
                    files += 1
                    h.sendfile(i, step[2], step[3], f"c.{files}")
                else:
                    h.close(i)
            h.turns()
            records.append(h.records())
        for i, s in socks.items():
            if s.fileno() >= 0:
                got[i], ended[i] = receive(s)
        leftovers = sorted(n for n in os.listdir(spool) if n != "lock")
        return records, got, ended, leftovers
    finally:
        for s in socks.values():
            s.close()
        h.shutdown()


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_c_loop_does_what_the_python_loop_does(name, tmp_path):
    steps = CONVERSATIONS[name]
    assert play("c", steps, tmp_path) == play("python", steps, tmp_path)
