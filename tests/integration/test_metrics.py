"""`serve --metrics-port`: GET /metrics after a known workload, parsed with
prometheus_client's own parser, every figure checked exactly; 404 for other
paths; a killed metrics process comes back; a taken port stops `serve`."""
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import orjson
import psutil
import pytest

import statload
from statload import ENV, free_port
from gearproto import PacketType as T
from gearproto import wait_for
from prometheus_client.openmetrics import parser as openmetrics
import mpgearman
from mpgearman import native

parser = pytest.importorskip("prometheus_client.parser")

FUNCTION_COUNTERS = ("submitted", "completed", "failed", "exceptions", "requeued")


def start(server_factory, *extra):
    """An mpgearman with metrics on a free port; (server, metrics port)."""
    for _ in range(5):
        port = free_port()
        try:
            return server_factory("mpgearman", "--metrics-port", str(port), *extra), port
        except pytest.fail.Exception:    # the port was taken meanwhile: rare, retry
            continue
    pytest.fail("no free metrics port")


def get(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
        return reply.headers["Content-Type"], reply.read().decode()


def scrape(port) -> dict:
    """{(sample name, sorted label pairs): value}; checks every family is
    declared with HELP and TYPE."""
    content_type, text = get(port)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for family in parser.text_string_to_metric_families(text):
        assert family.documentation and family.type in ("counter", "gauge", "histogram"), \
            family
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    for name in ("mpgearman_jobs_submitted_total", "mpgearman_process_cpu_seconds_total"):
        assert f"# TYPE {name} counter" in text
    return samples


def family(samples, name) -> dict:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def expected_function_samples(wl) -> dict:
    want = {}
    for fn, f in wl.expected().items():
        for counter in FUNCTION_COUNTERS:
            want[(f"mpgearman_jobs_{counter}_total", (("function", fn),))] = f[counter]
        for prio in ("high", "normal", "low"):
            want[("mpgearman_jobs_queued", (("function", fn), ("priority", prio)))] = f[prio]
        want[("mpgearman_jobs_running", (("function", fn),))] = f["running"]
        want[("mpgearman_workers", (("function", fn),))] = f["workers"]
    return want


def test_metrics_after_a_known_workload(server_factory, spawn, unique_name):
    server, port = start(server_factory)
    wl = statload.run(server, spawn, unique_name)
    try:
        samples = scrape(port)
    finally:
        wl.close()
    functions = {k: v for k, v in samples.items()
                 if k[0].startswith("mpgearman_jobs_") or k[0] == "mpgearman_workers"}
    assert functions == expected_function_samples(wl)
    assert samples[("mpgearman_functions_overflowed", ())] == 0

    opened = family(samples, "mpgearman_connections_accepted_total")
    assert set(opened) == {(("acceptor", "0"),), (("acceptor", "1"),)}
    assert sum(opened.values()) == statload.CONNECTIONS_OPENED
    assert sum(family(samples, "mpgearman_connections_open").values()) == \
        statload.CONNECTIONS_LEFT_OPEN
    # Function C's payload waits in the spool; nothing is in flight in the rings.
    assert samples[("mpgearman_spool_bytes", ())] == len(statload.BIG)
    assert sum(family(samples, "mpgearman_spool_written_bytes_total").values()) == \
        len(statload.BIG)
    rings = family(samples, "mpgearman_ring_used_bytes")
    assert len(rings) == 4 and set(rings.values()) == {0}
    assert samples[("mpgearman_ring_capacity_bytes", ())] == 4 << 20

    pids = family(samples, "mpgearman_process_id")
    roles = {(dict(labels)["role"], dict(labels)["index"]) for labels in pids}
    assert roles == {("supervisor", "0"), ("coordinator", "0"), ("metrics", "0"),
                     ("acceptor", "0"), ("acceptor", "1")}
    assert {int(p) for p in pids.values()} == server.pids()
    assert all(v > 0 for v in family(samples, "mpgearman_process_resident_memory_bytes").values())
    assert all(v >= 0 for v in family(samples, "mpgearman_process_cpu_seconds_total").values())


def test_other_paths_are_404_and_connections_count_once_closed(server_factory):
    server, port = start(server_factory)
    with pytest.raises(urllib.error.HTTPError) as err:
        get(port, "/")
    assert err.value.code == 404
    with server.connect() as conn:
        conn.admin("version")
        assert sum(family(scrape(port), "mpgearman_connections_open").values()) == 1
    wait_for(lambda: sum(family(scrape(port), "mpgearman_connections_open").values()) == 0,
             10, 0.05, "the closed connection to leave the open gauge")
    assert sum(family(scrape(port), "mpgearman_connections_accepted_total").values()) == 1


def test_a_killed_metrics_process_is_restarted(server_factory):
    server, port = start(server_factory)
    before = {dict(k)["role"]: int(v)
              for k, v in family(scrape(port), "mpgearman_process_id").items()}
    psutil.Process(before["metrics"]).send_signal(signal.SIGKILL)

    def restarted():
        try:
            pids = family(scrape(port), "mpgearman_process_id")
        except OSError:
            return None
        now = {dict(k)["role"]: int(v) for k, v in pids.items()}
        return now if now.get("metrics") not in (None, before["metrics"]) else None
    now = wait_for(restarted, 10, 0.1, "a new metrics process")
    assert now["coordinator"] == before["coordinator"]
    assert server.admin("version").startswith(b"OK ")


def test_a_taken_metrics_port_stops_serve_with_one_line(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    spool = tmp_path / "spool"
    spool.mkdir()
    argv = [sys.executable, "-m", "mpgearman", "serve", "--listen", "127.0.0.1", "--port", "0",
            "--acceptors", "1", "--spool-dir", str(spool), "--metrics-port", str(port)]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=ENV)
    taken.close()
    assert proc.returncode == 1, proc.stderr
    assert f"cannot listen for metrics on 127.0.0.1:{port}: Address already in use\n" \
        in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - started < 20


def test_metrics_stay_on_loopback_when_jobs_listen_everywhere(server_factory):
    """/metrics has no authentication: a server open to every address keeps
    it on 127.0.0.1 unless --metrics-listen says otherwise."""
    server, port = start(server_factory, "--listen", "")
    supervisor = psutil.Process(server.proc.pid)
    getter = getattr(supervisor, "net_connections", None) or supervisor.connections
    bound = {c.laddr.ip for c in getter(kind="inet")
             if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    assert bound == {"127.0.0.1"}
    assert "mpgearman_process_id" in get(port)[1]


@pytest.mark.parametrize("pure", [False, True], ids=["c", "twins"])
def test_the_data_plane_in_use_is_logged_and_shown(server_factory, monkeypatch, pure):
    if pure:
        monkeypatch.setenv("MPGEARMAN_PURE", "1")
        want, line = "python", "data plane: pure-Python twins (MPGEARMAN_PURE=1)"
        core = "python"
    else:
        monkeypatch.delenv("MPGEARMAN_PURE", raising=False)
        if native.IMPLEMENTATION != "c":
            pytest.skip("the C extensions are not built")
        want, line = "c", "data plane: C extensions"
        core = native.core_for("second")      # the default durability
    server, port = start(server_factory)
    err = (server.workdir / "mpgearman.err").read_text()
    assert line in err and f"; coordinator core: {core}" in err
    build = family(scrape(port), "mpgearman_build_info")
    assert build == {(("core", core), ("implementation", want),
                      ("version", mpgearman.__version__)): 1}
    run = subprocess.run([sys.executable, "-m", "mpgearman", "stat", "-s", server.address,
                          "--json"], capture_output=True, text=True, timeout=30, env=ENV)
    assert run.returncode == 0, run.stderr
    doc = orjson.loads(run.stdout)
    assert doc["implementation"] == want
    assert doc["core"] == core


def test_a_restarted_acceptor_counts_from_zero(server_factory):
    server, port = start(server_factory)
    with server.connect() as conn:
        conn.admin("version")
        victim = server.acceptor_of(conn)
    before = family(scrape(port), "mpgearman_process_id")
    index = next(dict(k)["index"] for k, v in before.items() if int(v) == victim)
    accepted = ("mpgearman_connections_accepted_total", (("acceptor", index),))
    assert scrape(port)[accepted] == 1
    psutil.Process(victim).send_signal(signal.SIGKILL)

    def replaced():
        pids = family(scrape(port), "mpgearman_process_id")
        pid = pids.get((("index", index), ("role", "acceptor")))
        return pid is not None and int(pid) != victim
    wait_for(replaced, 15, 0.1, f"acceptor {index} to be restarted")
    samples = scrape(port)
    assert samples[accepted] == 0
    assert samples[("mpgearman_connections_open", (("acceptor", index),))] == 0
    assert len(family(samples, "mpgearman_connections_open")) == 2


def raw_http(port, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_http_1_1_openmetrics_head_and_methods(server_factory):
    server, port = start(server_factory)
    reply = raw_http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                           b"Accept: application/openmetrics-text; version=1.0.0\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Content-Type: application/openmetrics-text" in head
    assert b"Connection: close" in head and body.endswith(b"# EOF\n")
    names = {f.name for f in openmetrics.text_string_to_metric_families(body.decode())}
    assert {"mpgearman_build", "mpgearman_job_wait_seconds",
            "mpgearman_process_start_time_seconds"} <= names
    reply = raw_http(port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b""
    assert b"Server: mpgearman-metrics\r\n" in head and b"Content-Length: 0\r\n" not in head
    reply = raw_http(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 405 ") and b"Allow: GET, HEAD" in reply


def test_queue_latency_and_busy_idle_workers(server_factory, fname):
    server, port = start(server_factory)
    label = (("function", fname),)
    with server.connect() as client, server.connect() as worker:
        for i in range(2):
            client.submit(T.SUBMIT_JOB_BG, fname.encode(), b"", b"%d" % i)
        time.sleep(0.3)
        samples = scrape(port)
        assert 0.3 <= samples[("mpgearman_oldest_queued_job_age_seconds", label)] < 30
        assert samples[("mpgearman_job_wait_seconds_count", label)] == 0
        worker.send_packet(T.CAN_DO, fname.encode())
        handle = worker.call(T.GRAB_JOB).args[0]
        wait_for(lambda: scrape(port)[("mpgearman_workers_busy", label)] == 1, 10, 0.1,
                 "the worker to count as busy")
        time.sleep(0.2)
        worker.send_packet(T.WORK_COMPLETE, handle, b"")
        wait_for(lambda: scrape(port)[("mpgearman_workers_idle", label)] == 1, 10, 0.1,
                 "the worker to count as idle")
        samples = scrape(port)
    assert samples[("mpgearman_job_wait_seconds_count", label)] == 1
    assert samples[("mpgearman_job_wait_seconds_bucket", label + (("le", "0.1"),))] == 0
    assert samples[("mpgearman_job_wait_seconds_sum", label)] >= 0.3
    assert samples[("mpgearman_job_run_seconds_count", label)] == 1
    assert samples[("mpgearman_job_run_seconds_sum", label)] >= 0.2
    assert samples[("mpgearman_jobs_queued", label + (("priority", "normal"),))] == 1
