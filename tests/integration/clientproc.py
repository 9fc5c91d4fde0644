"""Helpers for the tests that run our client-side programs as processes:
the environment they need, and starting a worker (clients/py_worker.py or
`mpgearman work`) and waiting until every server lists its functions.

A worker is a fresh Python process: under a loaded `pytest -n auto` its
start alone can take seconds, so the wait is longer than the fixtures'
default and a failure shows the worker's stderr.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from conftest import REPO_ROOT

CLIENTS = Path(__file__).parent / "clients"
PY_WORKER_FUNCTIONS = ("rev", "data", "status", "fail", "exc", "slow", "sum", "square")
REGISTER_TIMEOUT = 30.0


def env() -> dict:
    """The test's environment, with the package importable and no
    MPGEARMAN_SERVERS leaking in."""
    e = {k: v for k, v in os.environ.items() if k != "MPGEARMAN_SERVERS"}
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), e.get("PYTHONPATH")) if p)
    return e


def wait_registered(proc, servers, functions) -> None:
    """Wait until each server lists a worker for each function; on timeout
    fail with what the worker wrote on stderr."""
    for server in servers:
        for function in functions:
            try:
                server.wait_workers(function, timeout=REGISTER_TIMEOUT)
            except AssertionError as exc:
                err = Path(proc.err_path).read_text("utf-8", "replace")[-2000:]
                rc = proc.poll()
                raise AssertionError(f"{exc}\nworker exit status: {rc}\n"
                                     f"worker stderr:\n{err or '<empty>'}") from None


def start_py_worker(spawn, servers, prefix: str, concurrency: int = 2):
    """clients/py_worker.py serving PREFIX_* on every server in `servers`."""
    addresses = ",".join(s.address for s in servers)
    proc = spawn([sys.executable, CLIENTS / "py_worker.py", addresses, prefix, concurrency],
                 env=env())
    wait_registered(proc, servers, [f"{prefix}_{f}" for f in PY_WORKER_FUNCTIONS])
    proc.prefix = prefix
    return proc


def start_work(spawn, server, function: str, *command: str, concurrency: int = 1):
    """`mpgearman work FUNCTION -- COMMAND...` on `server`."""
    proc = spawn([sys.executable, "-m", "mpgearman", "work", function, "-s", server.address,
                  "-c", concurrency, "--", *command], env=env())
    wait_registered(proc, [server], [function])
    return proc
