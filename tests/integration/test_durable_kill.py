"""Nothing acknowledged is lost: SIGKILL every server process while clients
pipeline background submissions, restart on the same --data-dir, and every
job that got a JOB_CREATED is there under its handle and runs exactly once
(a job its worker had been given before the kill: at least once)."""
import os
import signal
import threading
import time

import psutil
import pytest

from gearproto import Conn, ConnectionClosed, PacketType as T, request

LOAD_SECONDS = 2.0
BATCH = 50
PRIOS = (T.SUBMIT_JOB_BG, T.SUBMIT_JOB_HIGH_BG, T.SUBMIT_JOB_LOW_BG)


def _submitter(srv, f: bytes, tag: int, created: set, lock, stop) -> None:
    """Pipeline batches of background submissions; keep every handle whose
    JOB_CREATED arrived, until the server dies or `stop` is set."""
    n = 0
    try:
        with Conn(srv.host, srv.port, timeout=5) as c:
            while not stop.is_set():
                batch = []
                for _ in range(BATCH):
                    n += 1
                    batch.append(request(PRIOS[n % 3], f, b"u%d-%d" % (tag, n), b"p%d" % n))
                c.send(b"".join(batch))
                for _ in range(BATCH):
                    p = c.read_packet()
                    assert p.type == T.JOB_CREATED, p
                    with lock:
                        created.add(p.payload)
                time.sleep(0.01)    # a queue the drain below empties in seconds
    except (OSError, ConnectionClosed):
        pass            # the server was killed


def _worker(srv, f: bytes, assigned: set, stop) -> None:
    """Run jobs while the load goes on: each assigned handle is recorded
    before its WORK_COMPLETE is sent."""
    try:
        with Conn(srv.host, srv.port, timeout=5) as w:
            w.send_packet(T.CAN_DO, f)
            while not stop.is_set():
                p = w.call(T.GRAB_JOB)
                if p.type == T.NO_JOB:
                    time.sleep(0.01)
                    continue
                handle = p.payload.split(b"\0", 1)[0]
                assigned.add(handle)
                w.send_packet(T.WORK_COMPLETE, handle, b"")
    except (OSError, ConnectionClosed):
        pass


def _kill_all(srv) -> None:
    pids = srv.pids()
    procs = [psutil.Process(pid) for pid in pids]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    psutil.wait_procs(procs, timeout=10)
    srv.proc.wait(10)
    srv.returncode = srv.proc.returncode


def _drain(srv, f: bytes, deadline: float) -> dict:
    """Run every queued job once, GRAB_JOBs pipelined; handle -> times run."""
    ran = {}
    with srv.connect() as w:
        w.send_packet(T.CAN_DO, f)
        while time.monotonic() < deadline:
            w.send(request(T.GRAB_JOB) * BATCH)
            done = []
            for _ in range(BATCH):
                p = w.read_packet()
                if p.type == T.JOB_ASSIGN:
                    handle = p.payload.split(b"\0", 1)[0]
                    ran[handle] = ran.get(handle, 0) + 1
                    done.append(request(T.WORK_COMPLETE, handle, b""))
            if not done:
                return ran
            w.send(b"".join(done))
    raise AssertionError("the queue did not drain in time")


@pytest.mark.parametrize("durability", ["second", "always"])
def test_sigkill_under_load_loses_no_acknowledged_job(server_factory, fname, tmp_path,
                                                      durability):
    data = tmp_path / "data"
    f = fname.encode()
    srv = server_factory("mpgearman", "--data-dir", str(data), "--durability", durability)
    created, assigned, lock, stop = set(), set(), threading.Lock(), threading.Event()
    threads = [threading.Thread(target=_submitter, args=(srv, f, k, created, lock, stop))
               for k in range(3)]
    threads.append(threading.Thread(target=_worker, args=(srv, f, assigned, stop)))
    for t in threads:
        t.start()
    time.sleep(LOAD_SECONDS)
    _kill_all(srv)          # while the submitters are still sending
    stop.set()
    for t in threads:
        t.join(10)
    assert len(created) > 500, "too little load to mean anything"

    again = server_factory("mpgearman", "--data-dir", str(data), "--durability", durability)
    waiting = sorted(created - assigned)
    assert waiting, "the worker ran everything before the kill: no queue to recover"
    with again.connect() as c:            # an old handle answers, as it did
        status = c.call(T.GET_STATUS, waiting[0]).payload.split(b"\0")
        assert status[:2] == [waiting[0], b"1"]
        fresh = c.submit(T.SUBMIT_JOB_BG, f, b"", b"new")
    assert fresh not in created
    old_top = max(int(h.rsplit(b":", 1)[1]) for h in created)
    assert int(fresh.rsplit(b":", 1)[1]) > old_top      # handles never collide

    ran = _drain(again, f, time.monotonic() + 60)
    assert ran.pop(fresh) == 1
    lost = [h for h in created - assigned if h not in ran]
    assert not lost, f"{len(lost)} acknowledged job(s) lost, e.g. {lost[:3]}"
    twice = {h: n for h, n in ran.items() if n != 1}
    assert not twice, f"jobs run more than once after the restart: {list(twice.items())[:3]}"


def test_a_spooled_payload_survives_sigkill_and_durability_none_keeps_no_file(
        server_factory, fname, tmp_path):
    data = tmp_path / "data"
    f = fname.encode()
    big = os.urandom(200_000)                      # above the spool threshold
    srv = server_factory("mpgearman", "--data-dir", str(data))
    with srv.connect() as c:
        handle = c.submit(T.SUBMIT_JOB_BG, f, b"", big)
    _kill_all(srv)
    again = server_factory("mpgearman", "--data-dir", str(data))
    with again.connect() as w:
        w.send_packet(T.CAN_DO, f)
        w.send_packet(T.GRAB_JOB)
        w.expect(T.JOB_ASSIGN, handle + b"\0" + f + b"\0" + big, timeout=10)
        w.send_packet(T.WORK_COMPLETE, handle, b"")
        assert w.call(T.ECHO_REQ, b"x").payload == b"x"
    assert os.listdir(data / "payloads") == []     # its kept copy went with the job
    mem = server_factory("mpgearman", "--data-dir", str(tmp_path / "none"),
                         "--durability", "none")
    with mem.connect() as c:
        c.submit(T.SUBMIT_JOB_BG, f, b"", b"x")
    mem.stop()
    assert not (tmp_path / "none").exists()


def test_sigterm_keeps_every_acknowledged_job_in_the_journal(server_factory, fname, tmp_path):
    from mpgearman.durable import replay

    data = tmp_path / "data"
    f = fname.encode()
    srv = server_factory("mpgearman", "--data-dir", str(data))
    created = []
    with srv.connect() as c:
        c.send(b"".join(request(T.SUBMIT_JOB_BG, f, b"", b"%d" % k) for k in range(500)))
        created = [c.expect(T.JOB_CREATED).payload for _ in range(500)]
    assert srv.stop() == 0
    found = replay.read(str(data / "journal"))
    assert [s.handle for s in found.live.values()] == created
