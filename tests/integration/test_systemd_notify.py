"""sd_notify as systemd sees it: a datagram socket in tmp_path stands in
for $NOTIFY_SOCKET. READY comes once every process is up, STATUS carries
live counts, WATCHDOG pings stop while the coordinator is frozen
(SIGSTOP) and resume after SIGCONT, STOPPING comes on SIGTERM."""
import os
import signal
import time

from gearproto import Conn, PacketType as T
from systemd_helpers import NotifyListener, children, server_env, start

WATCHDOG_USEC = 3_000_000          # a ping every 1.5 s
PERIOD = WATCHDOG_USEC / 2e6


def test_ready_status_watchdog_stopping(spawn, tmp_path, fname):
    listener = NotifyListener(tmp_path / "notify")
    env = server_env(NOTIFY_SOCKET=listener.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
    proc, [(host, port)] = start(spawn, tmp_path, env=env)
    try:
        ready = listener.wait("READY", 10)
        assert ready["READY"] == "1"
        assert ready["STATUS"].startswith("acceptors: 2, ")
        assert listener.messages[0][1] is ready        # nothing came before READY

        with Conn(host, port) as c:
            for i in range(3):
                c.submit(T.SUBMIT_JOB_BG, fname.encode(), b"u%d" % i, b"x")
            status = listener.wait("STATUS", 5, "acceptors: 2, connections: 1, queued jobs: 3, "
                                                "workers: 0")
        assert status

        listener.wait("WATCHDOG", 2 * PERIOD + 1)
        listener.wait("WATCHDOG", 2 * PERIOD + 1)

        coordinator = children(proc)["mpg-coordinator"][0]
        os.kill(coordinator, signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            # A ping may still go out while the last beat is under PERIOD old...
            listener.poll(stopped + PERIOD + 0.2)
            # ... but none for two whole periods after that.
            quiet = listener.poll(time.monotonic() + 2 * PERIOD)
            assert not [m for _, m in quiet if "WATCHDOG" in m], quiet
        finally:
            os.kill(coordinator, signal.SIGCONT)
        listener.wait("WATCHDOG", 2 * PERIOD + 1)

        proc.send_signal(signal.SIGTERM)
        listener.wait("STOPPING", 10)
        assert proc.wait(15) == 0
    finally:
        listener.close()
    kinds = [next(iter(m)) for _, m in listener.messages]
    assert kinds[0] == "READY" and kinds[-1] == "STOPPING"
    assert "STOPPING" not in kinds[:-1] and kinds.count("READY") == 1
    err = proc.err_path.read_text()
    assert f"no heartbeat from pid {coordinator}" in err
    assert "watchdog pings resume" in err
