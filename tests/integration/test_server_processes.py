"""The process architecture, seen from outside: the process tree, who holds
the listening sockets, a client and a worker on different acceptors, an
acceptor killed with SIGKILL, and a clean stop on SIGTERM."""
import os
import signal
import threading

import psutil
import pytest

from gearproto import PacketType as T
from gearproto import wait_for


def _named(pid):
    return psutil.Process(pid).name()


def _on_acceptor(server, want, avoid=None, limit=64):
    """Open connections until one lands on acceptor `want` (or on any acceptor
    other than `avoid`); close the others."""
    spare = []
    try:
        for _ in range(limit):
            c = server.connect()
            pid = server.acceptor_of(c)
            if (want is not None and pid == want) or (avoid is not None and pid != avoid):
                return c, pid
            spare.append(c)
    finally:
        for c in spare:
            c.close()
    pytest.fail("the kernel never spread connections over the acceptors")


def test_process_tree_and_sockets(server_factory):
    srv = server_factory("mpgearman", acceptors=3)
    root = psutil.Process(srv.proc.pid)
    children = root.children()
    names = sorted(p.name() for p in children)
    assert names == ["mpg-acceptor-0", "mpg-acceptor-1", "mpg-acceptor-2", "mpg-coordinator"]
    listeners = srv.acceptor_pids()
    assert len(listeners) == 3
    assert all(_named(pid).startswith("mpg-acceptor") for pid in listeners)
    coordinator = next(p for p in children if p.name() == "mpg-coordinator")
    assert not [c for c in coordinator.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
    # The rings and the status board are anonymous shared mappings (memfd):
    # every child maps them, and nothing lives in /dev/shm.
    for child in children:
        paths = [m.path for m in child.memory_maps()]
        assert any("memfd:mpgearman-rings" in p for p in paths), child.name()
        assert any("memfd:mpgearman-board" in p for p in paths), child.name()
        assert not [p for p in paths if p.startswith("/dev/shm")]


def test_client_and_worker_on_different_acceptors(mpgearman_server, fname):
    srv = mpgearman_server
    worker, wpid = _on_acceptor(srv, want=None, avoid=-1)
    client, cpid = _on_acceptor(srv, want=None, avoid=wpid)
    assert wpid != cpid
    worker.send_packet(T.CAN_DO, fname.encode())
    worker.send_packet(T.PRE_SLEEP)
    handle = client.submit(T.SUBMIT_JOB, fname.encode(), b"", b"ping")
    worker.expect(T.NOOP)
    worker.send_packet(T.GRAB_JOB)
    worker.expect(T.JOB_ASSIGN, handle + b"\0" + fname.encode() + b"\0ping")
    worker.send_packet(T.WORK_DATA, handle, b"partial")
    worker.send_packet(T.WORK_COMPLETE, handle, b"pong")
    client.expect(T.WORK_DATA, handle + b"\0partial")
    client.expect(T.WORK_COMPLETE, handle + b"\0pong")


def test_sigkill_of_an_acceptor_requeues_its_jobs(mpgearman_server, fname):
    srv = mpgearman_server
    before = set(srv.acceptor_pids())
    worker, wpid = _on_acceptor(srv, want=None, avoid=-1)
    client, cpid = _on_acceptor(srv, want=None, avoid=wpid)
    worker.send_packet(T.CAN_DO, fname.encode())
    handle = client.submit(T.SUBMIT_JOB, fname.encode(), b"", b"work")
    worker.send_packet(T.GRAB_JOB)
    worker.expect(T.JOB_ASSIGN)
    assert srv.status()[fname][:2] == (1, 1)          # running on the doomed worker

    os.kill(wpid, signal.SIGKILL)
    assert worker.is_closed(5)
    # A new acceptor takes the dead one's place ...
    wait_for(lambda: len(srv.acceptor_pids()) == 2 and wpid not in srv.acceptor_pids(),
             10, message="a replacement acceptor")
    assert (set(srv.acceptor_pids()) - before)
    # ... the job is queued again, and the client on the other acceptor gets its result.
    wait_for(lambda: srv.status().get(fname, (0, 1))[:2] == (1, 0), 5, message="requeue")
    with srv.connect() as again:
        again.send_packet(T.CAN_DO, fname.encode())
        again.send_packet(T.GRAB_JOB)
        again.expect(T.JOB_ASSIGN, handle + b"\0" + fname.encode() + b"\0work")
        again.send_packet(T.WORK_COMPLETE, handle, b"done")
        client.expect(T.WORK_COMPLETE, handle + b"\0done")


def test_sigterm_stops_everything_cleanly(server_factory, fname):
    srv = server_factory("mpgearman")
    spool = srv.workdir / "spool" / f"port-{srv.port}"
    pids = srv.pids()
    assert len(pids) == 4
    # leave a big queued job behind: its spool file must go too
    with srv.connect() as c:
        c.submit(T.SUBMIT_JOB_BG, fname.encode(), b"", b"x" * (1 << 20))
        assert [n for n in os.listdir(spool) if n != "lock"]
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(10) == 0
    gone, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)],
                                    timeout=5)
    assert not alive
    assert [n for n in os.listdir(spool) if n != "lock"] == []


@pytest.mark.parametrize("spool_dir", ["same", "another"])
def test_second_server_on_the_same_port_is_refused(mpgearman_server, tmp_path, spool_dir):
    import subprocess
    import sys
    from conftest import REPO_ROOT
    srv = mpgearman_server
    # Another --spool-dir escapes the spool lock: the port itself must refuse.
    spool = srv.workdir / "spool" if spool_dir == "same" else tmp_path / "another-spool"
    proc = subprocess.run([sys.executable, "-m", "mpgearman", "serve", "--listen", srv.host,
                           "--port", str(srv.port), "--spool-dir", str(spool)],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == 1, proc.stderr
    assert f"cannot start: port {srv.port} is already in use" in proc.stderr
    # the first server still takes every connection
    for _ in range(8):
        with srv.connect() as c:
            assert c.call(T.ECHO_REQ, b"up").payload == b"up"


def test_many_clients_many_workers_across_acceptors(server_factory, fname):
    srv = server_factory("mpgearman", acceptors=3)
    n_jobs, n_workers = 300, 4
    def work():
        with srv.connect(timeout=20) as w:
            w.send_packet(T.CAN_DO, fname.encode())
            while True:
                w.send_packet(T.GRAB_JOB)
                p = w.read_packet(timeout=20)
                if p.type == T.NO_JOB:
                    w.send_packet(T.PRE_SLEEP)
                    w.expect(T.NOOP, timeout=20)
                    continue
                handle, _, data = p.payload.split(b"\0", 2)
                if data == b"stop":
                    w.send_packet(T.WORK_COMPLETE, handle, b"")
                    return
                w.send_packet(T.WORK_COMPLETE, handle, data[::-1])

    threads = [threading.Thread(target=work, daemon=True) for _ in range(n_workers)]
    for t in threads:
        t.start()
    clients = [srv.connect(timeout=20) for _ in range(3)]
    for i in range(n_jobs):
        clients[i % 3].send_packet(T.SUBMIT_JOB, fname.encode(), b"", f"job{i}".encode())
    for k, c in enumerate(clients):
        created, results = c.created_and_completed(n_jobs // 3, timeout=20)
        for j, handle in enumerate(created):
            assert results[handle] == f"job{k + 3 * j}"[::-1].encode()
    with srv.connect() as c:
        for _ in range(n_workers):
            c.submit(T.SUBMIT_JOB_BG, fname.encode(), b"", b"stop")
    for t in threads:
        t.join(20)
    for c in clients:
        c.close()


def test_accepted_sockets_have_tcp_keepalive(mpgearman_server):
    import shutil
    import subprocess
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed")
    srv = mpgearman_server
    with srv.connect() as c:
        c.call(T.ECHO_REQ, b"x")
        out = subprocess.run(["ss", "-tno", "state", "established", f"( sport = :{srv.port} )"],
                             capture_output=True, text=True, timeout=10).stdout
    assert "keepalive" in out, out


def test_ctrl_c_to_the_process_group_stops_cleanly(server_factory):
    srv = server_factory("mpgearman")
    pids = srv.pids()
    os.killpg(srv.proc.pid, signal.SIGINT)      # what a terminal's Ctrl-C does
    assert srv.proc.wait(10) == 0
    _, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)],
                                 timeout=5)
    assert not alive
    err = (srv.workdir / "mpgearman.err").read_text()
    assert "restarting" not in err and "Traceback" not in err


def test_an_acceptor_that_keeps_dying_is_restarted_ever_more_slowly(mpgearman_server, fname):
    import time
    srv = mpgearman_server
    gaps = []
    victim = srv.acceptor_pids()[0]
    for _ in range(3):
        others = set(srv.acceptor_pids()) - {victim}
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        new = wait_for(lambda: set(srv.acceptor_pids()) - others - {victim}, 10,
                       message="a replacement acceptor")
        gaps.append(time.monotonic() - t0)
        victim, = new            # kill the same acceptor slot again
        # the server serves throughout
        with srv.connect() as c:
            assert c.call(T.ECHO_REQ, b"up").payload == b"up"
    assert gaps[0] >= 0.4 and gaps[1] >= 0.9 and gaps[2] >= 1.9, gaps
    assert "next start in 2.0 s" in (srv.workdir / "mpgearman.err").read_text()
