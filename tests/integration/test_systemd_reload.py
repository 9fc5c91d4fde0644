"""SIGHUP (systemctl reload): the config file is read again, live settings
take effect (the coordinator's at once, the acceptors' through a fresh set
of acceptors), queued background jobs (inline and spooled) survive the
roll, a key that needs a restart is named in a warning, and a bad file is
logged while the server keeps its configuration. The server runs with
JOURNAL_STREAM set, so its log must be journald's format: no timestamps,
role and pid on every line, from every process, the new acceptors too."""
import os
import signal
import time

from conftest import MpgearmanServer
from gearproto import Conn, PacketType as T, wait_for
from systemd_helpers import JOURNAL_LINE, children, server_env, start

BIG = 100_000          # above the 64K spool threshold: travels as a spool file


def _grab_all(host, port, fname, n):
    with Conn(host, port) as worker:
        worker.send_packet(T.CAN_DO, fname.encode())
        got = {}
        for _ in range(n):
            worker.send_packet(T.GRAB_JOB_UNIQ)
            job = worker.expect(T.JOB_ASSIGN_UNIQ, timeout=10)
            handle, _, unique, data = job.payload.split(b"\0", 3)
            got[unique] = data
            worker.send_packet(T.WORK_COMPLETE, handle, b"")
        worker.send_packet(T.GRAB_JOB)
        worker.expect(T.NO_JOB)
    return got


def _wait_log(proc, text, timeout=10.0):
    wait_for(lambda: text in proc.err_path.read_text(), timeout, 0.05, repr(text))


def test_hup_reloads_rolls_acceptors_and_survives_a_bad_file(spawn, tmp_path, fname):
    conf = tmp_path / "mpgearman.toml"
    conf.write_text('log-level = "info"\n')
    env = server_env(JOURNAL_STREAM="8:123456")
    proc, [(host, port)] = start(spawn, tmp_path, "--config", str(conf), env=env)
    server = MpgearmanServer(host, port, proc, tmp_path)
    old_acceptors = set(server.acceptor_pids())
    jobs = {b"small": b"s" * 10, b"mid": b"m" * 5000, b"big": bytes(range(256)) * (BIG // 256)}
    with Conn(host, port) as c:
        for unique, data in jobs.items():
            c.submit(T.SUBMIT_JOB_BG, fname.encode(), unique, data)
        assert c.admin("verbose") == b"OK INFO\n"
    idle = Conn(host, port)          # a connection the roll will close

    conf.write_text('log-level = "debug"\nmax-payload = 4096\nring-size = "8M"\n')
    proc.send_signal(signal.SIGHUP)
    _wait_log(proc, "reload: acceptors 2-3 serve, 0-1 retired")
    new_acceptors = set(wait_for(lambda: len(server.acceptor_pids()) == 2
                                 and set(server.acceptor_pids()), 10, 0.05, "two acceptors"))
    assert not new_acceptors & old_acceptors
    assert sorted(children(proc)) == ["mpg-acceptor-2", "mpg-acceptor-3", "mpg-coordinator"]
    assert idle.is_closed(timeout=5)
    idle.close()

    with Conn(host, port) as c:
        assert c.admin("verbose") == b"OK DEBUG\n"            # the coordinator's level
        assert server.status()[fname][0] == 3                 # nothing queued was lost
        c.send_packet(T.SUBMIT_JOB_BG, fname.encode(), b"too-big", b"x" * 5000)
        error = c.expect(T.ERROR)
        assert error.args[0] == b"ARGUMENT_TOO_LARGE"        # the acceptors' new limit
        assert c.is_closed(timeout=5)
    assert _grab_all(host, port, fname, 3) == jobs

    err = proc.err_path.read_text()
    assert "reload: ring-size changed (4194304 -> 8388608) but applies only after a restart" \
        in err
    assert "reload: max-payload 4294967295 -> 4096, log-level info -> debug" in err

    # An acceptor of the new set that dies is restarted in its own slot.
    victim = min(new_acceptors)
    os.kill(victim, signal.SIGKILL)
    new_acceptors = set(wait_for(lambda: len(server.acceptor_pids()) == 2
                                 and victim not in server.acceptor_pids()
                                 and set(server.acceptor_pids()), 10, 0.05, "a restart"))
    assert sorted(children(proc)) == ["mpg-acceptor-2", "mpg-acceptor-3", "mpg-coordinator"]
    with Conn(host, port) as c:
        c.submit(T.SUBMIT_JOB_BG, fname.encode(), b"restarted", b"r")
    assert _grab_all(host, port, fname, 1) == {b"restarted": b"r"}

    conf.write_text('log-level = "info"\njob-retries = "three"\n')
    proc.send_signal(signal.SIGHUP)
    _wait_log(proc, "reload failed, the running configuration stays: config file "
                    f"{conf}: job-retries must be a whole number")
    time.sleep(0.3)
    assert proc.poll() is None
    assert set(server.acceptor_pids()) == new_acceptors
    with Conn(host, port) as c:
        assert c.admin("verbose") == b"OK DEBUG\n"

    # A second roll goes back to the first half of the slots.
    conf.write_text('log-level = "debug"\nmax-payload = 4096\nmax-queued-output = "2M"\n')
    proc.send_signal(signal.SIGHUP)
    _wait_log(proc, "reload: acceptors 0-1 serve, 2-3 retired")
    wait_for(lambda: len(server.acceptor_pids()) == 2
             and not set(server.acceptor_pids()) & new_acceptors, 10, 0.05, "the old set gone")
    with Conn(host, port) as c:
        c.submit(T.SUBMIT_JOB_BG, fname.encode(), b"after", b"again")
    assert _grab_all(host, port, fname, 1) == {b"after": b"again"}
    assert server.stop() == 0

    lines = proc.err_path.read_text().splitlines()
    bad = [line for line in lines if not JOURNAL_LINE.fullmatch(line)]
    assert not bad, bad
    roles = {JOURNAL_LINE.fullmatch(line).group(1) for line in lines}
    assert {"supervisor", "coordinator", "acceptor-0", "acceptor-1",
            "acceptor-2", "acceptor-3"} <= roles
    by_pid = {(m.group(1), int(m.group(2))) for m in map(JOURNAL_LINE.fullmatch, lines)}
    assert ("supervisor", proc.pid) in by_pid
    assert new_acceptors <= {pid for role, pid in by_pid if role in ("acceptor-2", "acceptor-3")}
    assert len({pid for role, pid in by_pid if role == "acceptor-0"}) == 2
    # Debug lines appear only once the reload asked for them.
    first_debug = next(i for i, line in enumerate(lines) if " DEBUG " in line)
    assert first_debug > next(i for i, line in enumerate(lines) if "reload: max-payload" in line)


def test_hup_without_changes_keeps_the_acceptors(spawn, tmp_path):
    conf = tmp_path / "mpgearman.toml"
    conf.write_text("job-retries = 2\n")
    proc, [(host, port)] = start(spawn, tmp_path, "--config", str(conf))
    server = MpgearmanServer(host, port, proc, tmp_path)
    before = set(server.acceptor_pids())
    conf.write_text("job-retries = 5\n")             # a coordinator setting only
    proc.send_signal(signal.SIGHUP)
    _wait_log(proc, "reload: job-retries 2 -> 5")
    _wait_log(proc, "settings changed: job_retries=5")
    os.kill(proc.pid, signal.SIGHUP)                  # nothing changed this time
    _wait_log(proc, "reload: no setting that applies live has changed")
    assert set(server.acceptor_pids()) == before
    assert server.stop() == 0
