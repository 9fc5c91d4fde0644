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
