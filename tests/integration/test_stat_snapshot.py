"""`mpgearman stat` under load: every sample is one moment of the server.
Jobs are submitted at three priorities and drained while samples are taken
back to back; in each, QUEUED is HIGH + NORMAL + LOW per function, the
totals are the server's own totals, and every job is queued or running."""
import threading
import time

from gearproto import PacketType as T
from mpgearman.stat.probe import take
from mpgearman.stat.snapshot import document

PRIOS = (T.SUBMIT_JOB_HIGH_BG, T.SUBMIT_JOB_BG, T.SUBMIT_JOB_LOW_BG)


def _submitter(server, names, stop):
    with server.connect() as c:
        i = 0
        while not stop.is_set():
            for name in names:
                c.send_packet(PRIOS[i % 3], name, b"", b"x")
                i += 1
            for _ in names:
                c.expect(T.JOB_CREATED)


def _worker(server, names, stop):
    with server.connect() as w:
        for name in names:
            w.send_packet(T.CAN_DO, name)
        while not stop.is_set():
            pkt = w.call(T.GRAB_JOB)
            if pkt.type == T.JOB_ASSIGN:
                w.send_packet(T.WORK_COMPLETE, pkt.args[0], b"")


def test_each_sample_under_load_is_one_moment(mpgearman_server, unique_name):
    names = [unique_name().encode() for _ in range(3)]
    stop = threading.Event()
    threads = [threading.Thread(target=_submitter, args=(mpgearman_server, names, stop)),
               threading.Thread(target=_worker, args=(mpgearman_server, names, stop)),
               threading.Thread(target=_worker, args=(mpgearman_server, names[:1], stop))]
    for t in threads:
        t.start()
    submitted, busy_seen = [], 0
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            where, cur, _ = take(mpgearman_server.host, mpgearman_server.port, 5, 0)
            doc, stats = document(where, cur), cur["stats"]
            totals = doc["totals"]
            for name, fn in doc["functions"].items():
                assert fn["queued"] == sum(fn["queued_by_priority"].values()), (name, fn)
                assert fn["busy_workers"] + fn["idle_workers"] <= totals["workers"]
                busy_seen += fn["busy_workers"]
            assert totals["queued"] == int(stats["jobs_queued"]), (totals, stats)
            assert totals["running"] == int(stats["jobs_running"]), (totals, stats)
            assert totals["queued"] + totals["running"] == int(stats["jobs"]), (totals, stats)
            if doc["functions"]:
                assert sum(totals["queued_by_priority"].values()) == totals["queued"]
            submitted.append(doc["jobs"]["submitted"])
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    # the samples were taken while jobs came and went
    assert len(submitted) >= 10 and submitted[-1] - submitted[0] >= 100, submitted
    assert busy_seen > 0
