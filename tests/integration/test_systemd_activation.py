"""Socket activation: the server gets its listening socket as fd 3 with
LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES (as systemd or systemd-socket-activate
would pass it), every acceptor accepts from that one socket, nothing binds
the port itself, and --listen/--port are ignored with a log line."""
import os
import re
import socket
import sys

import psutil
import pytest

from conftest import MpgearmanServer, _connections
from gearproto import Conn, PacketType as T, wait_for
from systemd_helpers import python_launcher, server_env, start


def _echo_job(host, port, fname, n):
    """A foreground job through the server: submitted on one connection,
    done by a worker on another."""
    with Conn(host, port) as client, Conn(host, port) as worker:
        handle = client.submit(T.SUBMIT_JOB, fname.encode(), b"", b"ping%d" % n)
        worker.send_packet(T.CAN_DO, fname.encode())
        worker.send_packet(T.GRAB_JOB)
        assigned = worker.expect(T.JOB_ASSIGN)
        assert assigned.args[0] == handle
        worker.send_packet(T.WORK_COMPLETE, handle, assigned.args[2][::-1])
        client.expect(T.WORK_COMPLETE, handle + b"\0" + (b"ping%d" % n)[::-1])


def test_serves_on_an_inherited_socket(spawn, tmp_path, fname):
    lsock = socket.create_server(("127.0.0.1", 0), backlog=128)
    host, port = lsock.getsockname()
    argv = [*python_launcher(), str(lsock.fileno()), "gearman",
            sys.executable, "-m", "mpgearman", "serve", "--listen", "127.0.0.1",
            "--port", "0", "--acceptors", "2", "--spool-dir", str(tmp_path / "spool")]
    proc, served = start(spawn, tmp_path, argv=argv, env=server_env(),
                         pass_fds=(lsock.fileno(),))
    lsock.close()          # the server's copy is the only one now
    assert served == [(host, port)]
    err = proc.err_path.read_text()
    assert "socket activation" in err and "--listen and --port are ignored" in err

    for n in range(6):
        _echo_job(host, port, fname, n)

    server = MpgearmanServer(host, port, proc, tmp_path)
    acceptors = server.acceptor_pids()
    assert len(acceptors) == 2
    tree = psutil.Process(proc.pid).children()
    listening = {(child.pid, c.laddr.port) for child in tree for c in _connections(child)
                 if c.status == psutil.CONN_LISTEN}
    # Both acceptors hold the inherited socket and nothing else listens.
    assert listening == {(pid, port) for pid in acceptors}
    # Every connection is taken by one of the acceptors sharing the socket.
    conns = [Conn(host, port) for _ in range(8)]
    try:
        owners = {server.acceptor_of(c) for c in conns}
        assert owners <= set(acceptors)
    finally:
        for c in conns:
            c.close()
    assert (tmp_path / "spool" / f"port-{port}").is_dir()
    assert server.stop() == 0


def test_a_descriptor_that_is_not_a_listening_socket_is_one_clear_line(spawn, tmp_path):
    r, w = os.pipe()
    argv = [*python_launcher(), str(r), "gearman",
            sys.executable, "-m", "mpgearman", "serve", "--spool-dir", str(tmp_path / "spool")]
    proc = spawn(argv, env=server_env(), pass_fds=(r,))
    os.close(r)
    os.close(w)
    assert proc.wait(20) == 1
    err = proc.err_path.read_text().strip().splitlines()
    assert len(err) == 1, err
    assert "descriptor 3 (gearman) passed by systemd is not a socket" in err[0]


def test_a_dual_stack_socket_shows_ipv4_peers_as_ipv4(spawn, tmp_path, fname):
    """What mpgearman.socket gives (ListenStream=4730, BindIPv6Only=both):
    one IPv6 socket that takes IPv4 connections too."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    lsock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    lsock.bind(("::", 0))
    lsock.listen(128)
    port = lsock.getsockname()[1]
    argv = [*python_launcher(), str(lsock.fileno()), "gearman",
            sys.executable, "-m", "mpgearman", "serve", "--acceptors", "1",
            "--spool-dir", str(tmp_path / "spool")]
    proc, served = start(spawn, tmp_path, argv=argv, env=server_env(),
                         pass_fds=(lsock.fileno(),))
    lsock.close()
    assert served == [("[::]", port)]
    with Conn("127.0.0.1", port) as worker, Conn("127.0.0.1", port) as admin:
        worker.send_packet(T.CAN_DO, fname.encode())
        listing = wait_for(lambda: (lambda text: fname.encode() in text and text)(
            admin.admin("workers")), 5, 0.02, "the worker in the listing")
    assert re.search(rb"(?m)^\d+ 127\.0\.0\.1 - : " + fname.encode() + rb"$", listing), listing
    assert b"::ffff:" not in listing
    _echo_job("127.0.0.1", port, fname, 0)
