"""The /metrics text without processes or HTTP: families, label escaping
of any function name, the overflow bucket shown only when used, ring and
spool figures, read back with prometheus_client's parser."""
import os

import pytest

from mpgearman import metrics
from mpgearman.ipc import layout as L
from mpgearman.ipc.counters import Counters
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
    counters.write_function(counters.claim_slot(NASTY), range(1, 11))
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


@pytest.mark.parametrize("implementation", ["c", "python"])
def test_the_data_plane_is_an_info_gauge(parts, monkeypatch, implementation):
    monkeypatch.setattr(metrics.native, "IMPLEMENTATION", implementation)
    got = parse(metrics.render(*parts[:2], str(parts[2])))
    info = {k: v for k, v in got.items() if k[0] == "mpgearman_data_plane_info"}
    assert info == {("mpgearman_data_plane_info", (("implementation", implementation),)): 1}
