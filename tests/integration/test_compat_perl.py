"""Perl's Gearman::Client / Gearman::Worker (libgearman-client-perl, a pure
Perl implementation, not libgearman) against both servers. The Perl side
lives in clients/perl_{worker,client}.pl; the client prints one JSON object."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

CLIENTS = Path(__file__).parent / "clients"
FUNCTIONS = ("rev", "slowrev", "status", "fail", "exc")


@pytest.fixture
def perl_worker(server, perl_gearman, spawn, unique_name):
    """Starts clients/perl_worker.pl; returns the function-name prefix."""
    prefix = unique_name("pl")
    spawn([perl_gearman, CLIENTS / "perl_worker.pl", server.host, server.port, prefix])
    for fn in FUNCTIONS:
        server.wait_workers(f"{prefix}_{fn}")
    return prefix


@pytest.fixture
def perl_client(server, perl_gearman):
    def call(mode: str, func: str, *args: str, env: dict | None = None,
             timeout: float = 30, check: bool = True):
        proc = subprocess.run(
            [perl_gearman, str(CLIENTS / "perl_client.pl"), server.host,
             str(server.port), mode, func, *args],
            capture_output=True, timeout=timeout, env={**os.environ, **(env or {})})
        if not check:
            return proc
        assert proc.returncode == 0, proc.stderr.decode()
        return json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return call


def test_foreground_job(perl_worker, perl_client):
    out = perl_client("fg", f"{perl_worker}_rev", "hello world")
    assert out == {"result": "dlrow olleh", "events": [["complete", "dlrow olleh"]]}


def test_background_job_and_status(server, perl_worker, perl_client, tmp_path):
    out = perl_client("bgstatus", f"{perl_worker}_status", str(tmp_path / "release"))
    assert re.fullmatch(rf"{server.host}:{server.port}//H:[^:]+(:\d+)?:\d+", out["handle"])
    assert out["running"] == [1, 1, 1, 2]
    assert out["finished"] == [0, 0, 0, 0]


def test_fail(perl_worker, perl_client):
    out = perl_client("fail", f"{perl_worker}_fail")
    assert out == {"result": None, "events": [["fail"]]}


def test_exception_with_option(perl_worker, perl_client):
    out = perl_client("exc", f"{perl_worker}_exc")
    assert out == {"result": None, "events": [["exception", "boom: payload"]]}


def test_exception_without_option(server, perl_worker, perl_client):
    """Without `exceptions`, gearmand's WORK_FAIL carries `handle\\0` and
    Gearman::Client croaks on the unknown handle (PROTOCOL.md 6 #16);
    mpgearman's bare-handle WORK_FAIL is an ordinary failure."""
    proc = perl_client("exc", f"{perl_worker}_exc", check=False,
                       env={"PERL_CLIENT_EXCEPTIONS": "0"})
    if server.kind == "gearmand":
        assert proc.returncode != 0
        assert b"Got work_fail for unknown handle" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr.decode()
        out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        assert out == {"result": None, "events": [["fail"]]}


def test_unique_coalescing(perl_worker, perl_client, unique_name):
    """Two tasks with the same uniq in one task set: one job, both tasks
    complete with the result of the first submission."""
    out = perl_client("unique", f"{perl_worker}_slowrev", unique_name("u"),
                      "first", "second")
    assert out["events"] == [["complete", "tsrif"], ["complete", "tsrif"]]


def test_admin_status_parsed_by_perl(perl_worker, perl_client):
    """get_job_server_status parses the admin `status` listing."""
    out = perl_client("status", f"{perl_worker}_rev")
    assert out["status"] == {"capable": "1", "queued": "0", "running": "0"}
