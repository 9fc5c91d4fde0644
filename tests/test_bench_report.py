"""bench/report.py: each mpgearman figure against the better gearmand of
the same round, figure by figure, and the median of the per-round ratios."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def report():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("report")
    finally:
        sys.path.remove(str(BENCH))
        for name in ("report", "loads", "servers", "huge"):
            sys.modules.pop(name, None)


def run(rnd, load, server, **figures):
    return {"round": rnd, "load": load, "impl": "raw", "server": server, "result": figures}


def rows_by_figure(rows, load):
    return {r["figure"]: r for r in rows if r["load"] == load}


def test_each_figure_against_the_better_gearmand_of_its_round(report):
    runs = []
    # Round 0: -t 1 is faster, the default uses less CPU; round 1 the other way.
    for rnd, (t1, dflt) in enumerate([((100.0, 9.0), (80.0, 5.0)), ((70.0, 4.0), (90.0, 8.0)),
                                      ((100.0, 5.0), (50.0, 6.0))]):
        runs += [run(rnd, "echo0-4x16", "gearmand-t1", jobs_per_s=t1[0], server_us_per_job=t1[1],
                     server_cpu_pct=50, loadgen_cpu_pct=20),
                 run(rnd, "echo0-4x16", "gearmand", jobs_per_s=dflt[0], server_us_per_job=dflt[1],
                     server_cpu_pct=60, loadgen_cpu_pct=30),
                 run(rnd, "echo0-4x16", "mpgearman", jobs_per_s=[50.0, 180.0, 100.0][rnd],
                     server_us_per_job=10.0, server_cpu_pct=70, loadgen_cpu_pct=10)]
    rows = rows_by_figure(report.summarise(runs, ["gearmand-t1", "gearmand"]), "echo0-4x16")
    jobs = rows["jobs/s"]
    assert jobs["gearmand"] == 100.0                      # best per round: 100, 90, 100
    assert jobs["ratio"] == pytest.approx(1.0)            # ratios 0.5, 2.0, 1.0
    assert jobs["met"] is True and jobs["target"] == "ratio >= 1.00"
    assert jobs["best_gearmand"] == {"gearmand-t1": 2, "gearmand": 1}
    cpu = rows["server CPU per job"]
    assert cpu["gearmand"] == 5.0                         # the lower per round: 5, 4, 5
    assert cpu["ratio"] == pytest.approx(2.0)             # 10/5, 10/4, 10/5: 2, 2.5, 2
    assert cpu["met"] is False


def test_figures_relative_to_the_same_servers_200k_rates(report):
    runs = []
    for server, rate200k, rate1m in (("mpgearman", 100.0, 85.0), ("gearmand", 300.0, 150.0)):
        runs += [run(0, "bg-200k", server, submit_per_s=rate200k, drain_per_s=rate200k,
                     bytes_per_job=800.0, server_us_per_job=5.0, server_cpu_pct=1,
                     loadgen_cpu_pct=1),
                 run(0, "bg-1m", server, submit_per_s=rate1m, drain_per_s=rate1m / 2,
                     bytes_per_job=390.0, kept_mib=40.0, server_us_per_job=5.0,
                     server_cpu_pct=1, loadgen_cpu_pct=1)]
    rows = rows_by_figure(report.summarise(runs, ["gearmand"]), "bg-1m")
    assert rows["submit vs 200k"]["mpgearman"] == pytest.approx(0.85)
    assert rows["submit vs 200k"]["gearmand"] == pytest.approx(0.5)
    assert rows["submit vs 200k"]["met"] is True
    assert rows["drain vs 200k"]["met"] is False          # 0.425 < 0.8
    assert rows["PSS per queued job"]["met"] is True      # 390 <= 400 B, mpgearman's own
    assert rows["PSS kept after drain"]["met"] is False   # 40 > 32 MiB
    assert "| bg-1m | raw | submit vs 200k | 0.85 | 0.50 | - | / bg-200k >= 0.80 | yes |" \
        in report.table(list(rows.values()))
