"""bench/compare.py runs every load of the targets end to end: one tiny
round against gearmand -t 1 and mpgearman, raw workers. Not a performance
test (nothing is asserted about speed), only that each load yields its
figures and the table compares them."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
LOADS = ["echo0-16x256", "echo0-4x16", "echo0-1x1", "echo64k-4x16", "bg-200k", "bg-1m"]


def test_every_target_load_runs_and_is_tabulated(tmp_path):
    if not (shutil.which("gearmand") or Path("/usr/sbin/gearmand").exists()):
        pytest.skip("gearmand is not installed (Debian package gearman-job-server)")
    out = tmp_path / "result.json"
    argv = [sys.executable, str(REPO / "bench" / "compare.py"), "--rounds", "1",
            "--servers", "gearmand-t1,mpgearman", "--worker-impls", "raw",
            "--duration", "0.2", "--bg-jobs", "20000", "--big-bg-jobs", "40000",
            "--settle", "0", "--build-dir", str(tmp_path / "build"), "--output", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)       # compare.py stops its servers on SIGTERM
        stdout, stderr = proc.communicate(timeout=30)
        pytest.fail(f"compare.py took over 60 s:\n{stdout}\n{stderr}")
    if "building the load generator failed" in stderr:
        pytest.skip("the load generator cannot be built here (needs cc and libgearman-dev)")
    assert proc.returncode == 0, stderr
    doc = orjson.loads(out.read_bytes())
    runs = {(r["load"], r["server"]): r["result"] for r in doc["runs"]}
    assert set(runs) == {(load, s) for load in LOADS for s in ("gearmand-t1", "mpgearman")}
    for (load, server), res in runs.items():
        assert res["failures"] == 0, (load, server, res)
        assert res["jobs"] > 0 and res["server_us_per_job"] > 0, (load, server, res)
    for server in ("gearmand-t1", "mpgearman"):
        timed = runs[("echo0-1x1", server)]
        assert 0 < timed["latency_p50_us"] <= timed["latency_p99_us"]
        for load, jobs in (("bg-200k", 20000), ("bg-1m", 40000)):
            res = runs[(load, server)]
            assert res["jobs"] == jobs
            assert res["submit_per_s"] > 0 and res["drain_per_s"] > 0
            assert res["pss_queued"] > res["pss_before"] > 0 and res["pss_drained"] > 0
    rows = {(r["load"], r["figure"]): r for r in doc["summary"]}
    p50 = rows[("echo0-1x1", "p50 latency")]
    assert p50["ratio"] == pytest.approx(p50["mpgearman"] / p50["gearmand"])
    assert p50["target"] == "ratio <= 1.00" and p50["met"] in (True, False)
    assert rows[("bg-1m", "submit vs 200k")]["mpgearman"] == pytest.approx(
        runs[("bg-1m", "mpgearman")]["submit_per_s"] / runs[("bg-200k", "mpgearman")]["submit_per_s"])
    for (load, figure), row in rows.items():
        assert f"| {load} | raw | {figure} |" in stdout
