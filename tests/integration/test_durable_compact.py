"""Online compaction in a running server: once most jobs have ended the
journal is rewritten as the live ones (in a forked child), stays small, and
a restart finds exactly the live jobs."""
import time

from gearproto import PacketType as T, request
from test_durable_kill import _drain, _kill_all


def test_the_journal_is_compacted_while_serving(server_factory, fname, tmp_path, monkeypatch):
    monkeypatch.setenv("MPGEARMAN_JOURNAL_SLACK", "4096")
    data = tmp_path / "data"
    f = fname.encode()
    srv = server_factory("mpgearman", "--data-dir", str(data))
    with srv.connect() as c:
        c.send(b"".join(request(T.SUBMIT_JOB_BG, f, b"", b"x" * 100) for _ in range(2000)))
        for _ in range(2000):
            c.expect(T.JOB_CREATED)
    assert len(_drain(srv, f, time.monotonic() + 30)) == 2000
    with srv.connect() as c:
        live = {c.submit(T.SUBMIT_JOB_BG, f, b"", b"live %d" % k) for k in range(5)}
    journal = data / "journal"
    deadline = time.monotonic() + 10
    while journal.stat().st_size > 8192:
        assert time.monotonic() < deadline, f"not compacted: {journal.stat().st_size} bytes"
        time.sleep(0.05)
        srv.admin("status")          # a turn of the loop
    assert "compacted" in (srv.workdir / "mpgearman.err").read_text()
    _kill_all(srv)
    again = server_factory("mpgearman", "--data-dir", str(data))
    assert set(_drain(again, f, time.monotonic() + 10)) == live


def test_stats_stat_and_metrics_show_the_journal(server_factory, fname, tmp_path):
    import json
    import subprocess
    import sys
    import urllib.request

    from conftest import free_port

    f = fname.encode()
    port = free_port()
    srv = server_factory("mpgearman", "--data-dir", str(tmp_path / "d"),
                         "--metrics-port", str(port))
    with srv.connect() as c:
        for k in range(3):
            c.submit(T.SUBMIT_JOB_BG, f, b"", b"x")
    with srv.connect() as c:
        c.send(b"stats\n")
        listing = c.read_listing().decode()
    stats = dict(line.split(" ", 1) for line in listing.splitlines()
                 if line.startswith("journal."))
    assert stats["journal.durability"] == "second"
    assert stats["journal.live_jobs"] == "3" and int(stats["journal.bytes"]) > 100
    assert float(stats["journal.seconds_since_sync"]) < 5
    argv = [sys.executable, "-m", "mpgearman", "stat", "--json", "-s", srv.address,
            "--interval", "0"]
    doc = json.loads(subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout)
    assert doc["journal"]["live_jobs"] == 3 and doc["journal"]["writable"] == 1
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    assert b"mpgearman_journal_live_jobs 3.0" in text
    assert b"mpgearman_journal_seconds_since_sync" in text
