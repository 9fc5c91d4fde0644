"""The /metrics text without processes or HTTP: families, label escaping
of any function name, the overflow bucket shown only when used, ring and
spool figures, read back with prometheus_client's parser."""
import os

import pytest

import psutil
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics import parser as openmetrics
from prometheus_client.registry import CollectorRegistry

from mpgearman import __version__, metrics
from mpgearman.coordinator.queues import BOUNDS
from mpgearman.ipc import layout as L
from mpgearman.ipc.counters import FUNCTION_FIELDS, Counters
from mpgearman.ipc.shm import Segment

parser = pytest.importorskip("prometheus_client.parser")
NASTY = b'say "hi" \\ back\nslash \xff end'


@pytest.fixture
def parts(tmp_path):
    counters = Counters.create(acceptors=1, slots=4)
    segment = Segment.create(1, 1 << 16)
    counters.start_process(L.CTR_SUPERVISOR, os.getpid())
    counters.start_process(L.CTR_FIRST_ACCEPTOR, os.getpid())
    yield counters, segment, tmp_path
    counters.close()
    segment.close()


def parse(text: bytes) -> dict:
    out = {}
    for family in parser.text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_any_function_name_survives_the_text_format(parts):
    counters, segment, spool = parts
    counters.write_function(counters.claim_slot(NASTY), range(1, 11))   # up to workers
    got = parse(metrics.render(counters, segment, str(spool)))
    name = NASTY.decode("utf-8", "backslashreplace")
    assert got[("mpgearman_jobs_submitted_total", (("function", name),))] == 1
    assert got[("mpgearman_jobs_queued", (("function", name), ("priority", "low")))] == 8
    assert got[("mpgearman_workers", (("function", name),))] == 10
    assert not any(dict(labels).get("function") == "__other__" for _, labels in got)


def test_the_overflow_bucket_shows_once_used(parts):
    counters, segment, spool = parts
    counters.write_function(L.CTR_OVERFLOW_SLOT, [2] + [0] * 9)
    counters.set_overflowed(3)
    got = parse(metrics.render(counters, segment, str(spool)))
    assert got[("mpgearman_jobs_submitted_total", (("function", "__other__"),))] == 2
    assert got[("mpgearman_functions_overflowed", ())] == 3


def test_rings_and_spool(parts):
    counters, segment, spool = parts
    assert segment.inbound(0).push_many([b"x" * 20]) == 1
    (spool / "a0.1.1").write_bytes(b"y" * 1000)
    os.link(spool / "a0.1.1", spool / "c.1")               # shared payload: once
    (spool / "a0.1.2.part").write_bytes(b"z" * 24)
    (spool / "lock").write_bytes(b"")
    got = parse(metrics.render(counters, segment, str(spool)))
    ring = (("acceptor", "0"), ("direction", "inbound"))
    assert got[("mpgearman_ring_used_bytes", ring)] == L.record_size(20)
    assert got[("mpgearman_ring_used_bytes", (("acceptor", "0"), ("direction", "outbound")))] == 0
    assert got[("mpgearman_spool_bytes", ())] == 1024
    assert metrics.spool_bytes(str(spool / "missing")) == 0


def test_every_family_has_help_and_type(parts):
    text = metrics.render(*parts[:2], str(parts[2])).decode()
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names)) == text.count("# HELP ")
    assert text.endswith("\n")


@pytest.mark.parametrize("implementation, core", [("c", "c"), ("c", "python"),
                                                  ("python", "python")])
def test_build_info_names_the_version_and_the_data_plane(parts, monkeypatch, implementation,
                                                         core):
    monkeypatch.setattr(metrics.native, "IMPLEMENTATION", implementation)
    monkeypatch.setattr(metrics.native, "CORE", core)
    got = parse(metrics.render(*parts[:2], str(parts[2])))
    info = {k: v for k, v in got.items() if "data_plane" in k[0] or "build" in k[0]}
    assert info == {("mpgearman_build_info", (("core", core), ("implementation", implementation),
                                              ("version", __version__))): 1}


def test_latency_families(parts):
    counters, segment, spool = parts
    fields = dict.fromkeys(FUNCTION_FIELDS, 0)
    fields.update(busy=2, idle=3, oldest_queued_us=990 * 10**6,
                  wait_0=4, wait_5=1, wait_14=1, wait_sum_us=4_000_300,
                  run_7=2, run_sum_us=7_500_000)
    counters.write_function(counters.claim_slot(b"f"), [fields[k] for k in FUNCTION_FIELDS])
    reg = CollectorRegistry(auto_describe=False)
    reg.register(metrics.Collector(counters, segment, str(spool), clock=lambda: 1000.0))
    got = parse(generate_latest(reg))
    f = (("function", "f"),)
    assert got[("mpgearman_workers_busy", f)] == 2
    assert got[("mpgearman_workers_idle", f)] == 3
    assert got[("mpgearman_oldest_queued_job_age_seconds", f)] == 10
    wait = {dict(k[1]).get("le"): v for k, v in got.items()
            if k[0] == "mpgearman_job_wait_seconds_bucket"}
    assert wait["0.001"] == 4 and wait["0.1"] == 4 and wait["0.5"] == 5
    assert wait["3600.0"] == 5 and wait["+Inf"] == 6 and len(wait) == len(BOUNDS) + 1
    assert got[("mpgearman_job_wait_seconds_count", f)] == 6
    assert got[("mpgearman_job_wait_seconds_sum", f)] == pytest.approx(4.0003)
    assert got[("mpgearman_job_run_seconds_bucket", f + (("le", "5.0"),))] == 2
    assert got[("mpgearman_job_run_seconds_sum", f)] == 7.5


def test_process_start_times(parts):
    got = parse(metrics.render(*parts[:2], str(parts[2])))
    start = psutil.Process().create_time()
    assert got[("mpgearman_process_start_time_seconds",
                (("index", "0"), ("role", "supervisor")))] == start
    assert got[("mpgearman_process_start_time_seconds",
                (("index", "0"), ("role", "acceptor")))] == start


def call(application, path="/metrics", method="GET", accept=None):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": ""}
    if accept:
        environ["HTTP_ACCEPT"] = accept
    got = {}

    def start_response(status, headers, exc_info=None):
        got["status"], got["headers"] = status, dict(headers)
    body = b"".join(application(environ, start_response))
    return got["status"], got["headers"], body


def test_http_content_negotiation_methods_and_paths(parts):
    application = metrics.app(metrics.registry(*parts[:2], str(parts[2])))
    status, headers, body = call(application)
    assert status == "200 OK" and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"mpgearman_build_info{" in body
    status, headers, body = call(application, accept="application/openmetrics-text; "
                                                     "version=1.0.0,text/plain;q=0.5")
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    families = {f.name for f in openmetrics.text_string_to_metric_families(body.decode())}
    assert {"mpgearman_build", "mpgearman_job_wait_seconds", "mpgearman_jobs_submitted"} \
        <= families
    status, headers, body = call(application, method="HEAD")
    assert status == "200 OK" and body == b""
    # what GET would send (give or take a digit of this process's CPU time)
    assert abs(int(headers["Content-Length"]) - len(call(application)[2])) < 10
    assert int(headers["Content-Length"]) > 1000
    status, headers, _ = call(application, method="POST")
    assert status.startswith("405") and headers["Allow"] == "GET, HEAD"
    assert call(application, path="/other")[0].startswith("404")
