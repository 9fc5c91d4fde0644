"""The acceptor's side of a spool file that vanished before it was sent:
only the connection it was for is closed, with a log line naming the file."""
import logging
import os
import socket
from types import SimpleNamespace

import pytest

from mpgearman.acceptor import outbound
from mpgearman.acceptor.connection import Connection
from mpgearman.acceptor.spool import Spool
from mpgearman.ipc import messages


@pytest.fixture
def acc(tmp_path):
    pairs = [socket.socketpair() for _ in range(2)]
    conns = [Connection(a, messages.conn_id(0, 0, i + 1), 1 << 20, 1 << 16)
             for i, (a, _) in enumerate(pairs)]
    yield SimpleNamespace(conns={c.id: c for c in conns}, spool=Spool(str(tmp_path), "a0"),
                          touched=set(), config=SimpleNamespace(max_queued_output=1 << 20))
    for a, b in pairs:
        a.close()
        b.close()


def test_take_of_a_missing_file_raises_and_leaves_nothing(tmp_path):
    spool = Spool(str(tmp_path), "a0")
    with pytest.raises(FileNotFoundError):
        spool.take("c.1")
    writer = spool.writer()
    writer.write(b"payload")
    fd = spool.take(writer.finish())
    assert list(tmp_path.iterdir()) == []     # the name is dropped, the fd keeps the bytes
    assert os.pread(fd, 100, 0) == b"payload"
    os.close(fd)


def test_sendfile_of_a_vanished_file_closes_only_its_connection(acc, caplog):
    victim, other = acc.conns.values()
    with caplog.at_level(logging.ERROR):
        outbound.apply(acc, [messages.sendfile(victim.id, b"head", "c.7", 100_000),
                             messages.send(other.id, b"still here")])
    assert victim.closing and not victim.out
    assert not other.closing and list(other.out) == [b"still here"]
    assert "c.7" in caplog.text
