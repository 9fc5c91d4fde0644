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


def test_spooled_payloads_count_as_queued_output(acc, tmp_path):
    conn = next(iter(acc.conns.values()))
    spool = acc.spool
    fds = []
    for _ in range(3):
        writer = spool.writer()
        writer.write(b"p" * 5000)
        fds.append(spool.take(writer.finish()))
    for fd in fds:
        conn.queue_file(b"head", fd, 5000)
    assert conn.out_bytes == 3 * 5004
    assert conn.backlog() == 2 * 5004          # the packet being written does not count
    conn.sock.setblocking(False)
    assert conn.flush() is True                # a socketpair takes 15 KB at once
    assert conn.out_bytes == 0 and conn.backlog() == 0


def test_a_pile_of_spooled_results_drops_a_peer_that_does_not_read(acc, tmp_path, caplog):
    acc.config.max_queued_output = 12_000
    closed = []
    acc.close_conn = closed.append
    conn = next(iter(acc.conns.values()))
    names = []
    for _ in range(3):
        writer = acc.spool.writer()
        writer.write(b"p" * 5000)
        names.append(writer.finish())
    outbound.apply(acc, [messages.sendfile(conn.id, b"head", n, 5000) for n in names[:2]])
    assert closed == []                        # 5004 behind the first: fine
    outbound.apply(acc, [messages.sendfile(conn.id, b"head", names[2], 5000)])
    assert closed == [] and conn.backlog() == 10_008
    outbound.apply(acc, [messages.send(conn.id, b"x" * 2000)])
    assert closed == [conn] and "not reading" in caplog.text


def test_a_payload_kept_on_another_filesystem_is_copied(tmp_path, monkeypatch):
    """A spool on tmpfs and a data directory on disk: the link fails with
    EXDEV, the payload is copied whole instead."""
    import errno

    from mpgearman.acceptor import spool as spool_mod

    src, dst = tmp_path / "in.1", tmp_path / "kept" / "in.1"
    dst.parent.mkdir()
    src.write_bytes(b"payload" * 1000)

    def cross_device(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(spool_mod.os, "link", cross_device)
    spool_mod.link_or_copy(str(src), str(dst))
    assert dst.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dst.parent.iterdir()) == ["in.1"]
