"""Third-party Python Gearman libraries against both servers.

- the python-gearman 2.x descendants gearman3 0.2.1, pygearman 0.2.6 and
  python3-gearman 0.1.0 (GearmanClient, GearmanWorker, GearmanAdminClient);
- aiogear 0.2.6 (asyncio Client, CallbackClient, Worker, Admin).

Each library runs in subprocesses (clients/pylibs/*.py) from its own
directory, installed by tests/run from clients/pylibs/requirements.txt
(MPGEARMAN_PYLIBS overrides the location). A client prints one JSON object;
workers register PREFIX_<name> functions, see the scripts' docstrings.

Library quirks the assertions account for (identical on both servers):
gearman3 0.2.1 calls array.fromstring(), gone since Python 3.9, so its
scripts run with a one-line alias (clients/pylibs/pgload.py); gearman3 also
reports known/running as False in every status and its admin client only
parses `version`; the python-gearman family's maxqueue expects "OK" but
gets "OK\\r" (gearmand ends it with \\r\\n), so maxqueue is not exercised.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from gearproto import wait_for
from scriptlib import ScriptLib, py_lib, spawned_json, wait_queued

CLIENTS = Path(__file__).parent / "clients" / "pylibs"
GEARMAN_LIBS = ("gearman3", "pygearman", "python3-gearman")
BIG = 3 * 1024 * 1024 + 7


@pytest.fixture(params=GEARMAN_LIBS)
def pylib(request) -> ScriptLib:
    return py_lib(request.param, [sys.executable, CLIENTS / "pygear_worker.py", request.param],
                  [sys.executable, str(CLIENTS / "pygear_client.py"), request.param], "exc")


@pytest.fixture
def aiogear() -> ScriptLib:
    return py_lib("aiogear", [sys.executable, CLIENTS / "aiogear_worker.py"],
                  [sys.executable, str(CLIENTS / "aiogear_client.py")], "exc")


@pytest.fixture
def pyworker(server, pylib, spawn, unique_name) -> str:
    prefix = unique_name("pg")
    pylib.worker(server, spawn, prefix, f"id-{prefix}")
    return prefix


@pytest.fixture
def aioworker(server, aiogear, spawn, unique_name) -> str:
    prefix = unique_name("ag")
    aiogear.worker(server, spawn, prefix)
    return prefix


# ---------------------------------------------------------------------------
# python-gearman family: gearman3, pygearman, python3-gearman

def test_pygear_foreground(server, pylib, pyworker):
    out = pylib.client(server, "fg", f"{pyworker}_rev", "hello world")
    assert out["state"] == "COMPLETE" and not out["timed_out"], out
    assert out["result"] == "dlrow olleh"
    assert out["handle"].startswith("H:")


def test_pygear_partial_data_and_status(server, pylib, pyworker):
    """WORK_STATUS, WORK_DATA and WORK_WARNING reach the client before
    WORK_COMPLETE."""
    out = pylib.client(server, "progress", f"{pyworker}_progress", "abc")
    assert out["state"] == "COMPLETE", out
    assert out["result"] == "cba"
    assert out["data"] == ["part1"]
    assert out["warnings"] == ["warn1"]
    assert out["status"] == [2, 2]


def test_pygear_background_status(server, pylib, pyworker, tmp_path):
    """A background job polled with GET_STATUS: running at 1/2 while the
    worker holds it, unknown once it completed."""
    out = pylib.client(server, "bgstatus", f"{pyworker}_gated", tmp_path / "release")
    assert out["state"] == "CREATED", out
    known = pylib.name != "gearman3"       # gearman3 compares b'1' with '1'
    assert out["running"] == [known, known, 1, 2]
    assert out["finished"] == [False, False, 0, 0]


def test_pygear_priority(server, pylib, spawn, unique_name):
    """Low, normal and high foreground jobs queued before any worker exists
    run high first, low last."""
    prefix = unique_name("pp")
    client = spawn(pylib.client_cmd(server, "priority", f"{prefix}_seq"),
                   env=pylib.env, cwd=CLIENTS)
    wait_queued(server, f"{prefix}_seq", 3, client)
    pylib.worker(server, spawn, prefix)
    out = spawned_json(client)
    assert all(r["state"] == "COMPLETE" for r in out["results"]), out
    assert [r["result"] for r in out["results"]] == ["3:low", "2:normal", "1:high"]


def test_pygear_unique_coalescing(server, pylib, pyworker, unique_name):
    """Two clients, one unique: one job, both get the first workload's result."""
    out = pylib.client(server, "unique", f"{pyworker}_slowrev", unique_name("u"),
                       "first", "second")
    r1, r2 = out["results"]
    assert r1["handle"] == r2["handle"], out
    assert [r1["state"], r2["state"]] == ["COMPLETE", "COMPLETE"], out
    assert [r1["result"], r2["result"]] == ["tsrif", "tsrif"]


def test_pygear_jobs_in_flight(server, pylib, pyworker, spawn):
    """Ten jobs submitted together, served by two workers."""
    pylib.worker(server, spawn, pyworker)
    server.wait_workers(f"{pyworker}_rev", 2)
    out = pylib.client(server, "multi", f"{pyworker}_rev", 10)
    assert out["handles"] == 10
    assert [r["state"] for r in out["results"]] == ["COMPLETE"] * 10, out
    assert [r["result"] for r in out["results"]] == [f"job-{i}"[::-1] for i in range(10)]


def test_pygear_large_payload(server, pylib, pyworker):
    out = pylib.client(server, "big", f"{pyworker}_echo", BIG, timeout=90)
    assert out == {"state": "COMPLETE", "timed_out": False, "size": BIG, "same": True}


def test_pygear_fail(server, pylib, pyworker):
    out = pylib.client(server, "fail", f"{pyworker}_fail")
    assert out["state"] == "FAILED", out
    assert out["result"] is None and out["exception"] is None


def test_pygear_exception(server, pylib, pyworker):
    """send_job_exception sends WORK_EXCEPTION then WORK_FAIL; the client
    never asks for the `exceptions` option. gearmand turns the exception into
    WORK_FAIL `handle\\0` and the client dies on that unknown handle
    (PROTOCOL.md 6 #16); mpgearman sends the bare handle: an ordinary
    failure."""
    proc = pylib.client(server, "exc", f"{pyworker}_exc", check=False)
    if server.kind == "gearmand":
        assert proc.returncode != 0
        assert b"KeyError" in proc.stderr and b"\\x00'" in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr.decode()
        out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        assert out["state"] == "FAILED" and out["exception"] is None, out


def test_pygear_admin(server, pylib, pyworker):
    out = pylib.client(server, "admin", f"{pyworker}_rev")
    assert out["get_version"].startswith("OK "), out
    if pylib.name == "gearman3":
        # bytes lines compared with str: only `version` gets through
        assert out["ping_server"] == {"error": "InvalidAdminClientState"}
        assert out["get_status"] == {"error": "TypeError"}
        assert out["get_workers"] == {"error": "TypeError"}
        return
    assert out["ping_server"] is True
    assert out["get_status"] == [{"task": f"{pyworker}_rev", "queued": 0, "running": 0,
                                  "workers": 1}]
    names = ("echo", "exc", "fail", "gated", "progress", "rev", "seq", "slowrev")
    assert out["get_workers"] == [{"client_id": f"id-{pyworker}",
                                   "tasks": [f"{pyworker}_{n}" for n in names]}]


# ---------------------------------------------------------------------------
# aiogear

def test_aiogear_foreground(server, aiogear, aioworker):
    out = aiogear.client(server, "fg", f"{aioworker}_rev", "hello world")
    assert out == {"type": "WorkComplete", "handle": out["created"], "result": "dlrow olleh",
                   "created": out["created"]}


def test_aiogear_partial_data_and_status(server, aiogear, aioworker):
    out = aiogear.client(server, "progress", f"{aioworker}_progress", "abc")
    assert out["results"] == [{"state": "COMPLETE", "data": "cba"}]
    assert out["events"] == [["status", {"complete": 1, "total": 2}], ["data", "part1"],
                             ["warning", "warn1"], ["status", {"complete": 2, "total": 2}],
                             ["complete", "WORK_COMPLETE"]]


def test_aiogear_background_status(server, aiogear, aioworker, tmp_path):
    out = aiogear.client(server, "bgstatus", f"{aioworker}_gated", tmp_path / "release")
    assert out["running"] == [True, True, 1, 2], out
    assert out["finished"] == [False, False, 0, 0]


def test_aiogear_priority(server, aiogear, spawn, unique_name):
    prefix = unique_name("ap")
    client = spawn(aiogear.client_cmd(server, "priority", f"{prefix}_seq"),
                   env=aiogear.env, cwd=CLIENTS)
    wait_queued(server, f"{prefix}_seq", 3, client)
    aiogear.worker(server, spawn, prefix)
    out = spawned_json(client)
    assert out["results"] == {"high": "1:high", "normal": "2:normal", "low": "3:low"}


def test_aiogear_unique_coalescing(server, aiogear, spawn, unique_name):
    """One connection submits one uuid twice: one job (assigned with
    JOB_ASSIGN_UNIQ carrying the uuid), two WORK_COMPLETEs."""
    prefix = unique_name("au")
    aiogear.worker(server, spawn, prefix, "GRAB_JOB_UNIQ")
    uniq = unique_name("u")
    out = aiogear.client(server, "unique", f"{prefix}_urev", uniq, "first", "second")
    h1, h2 = out["handles"]
    assert h1 == h2, out
    assert out["results"] == [{"type": "WorkComplete", "handle": h1,
                               "result": f"{uniq}:tsrif"}] * 2


def test_aiogear_jobs_in_flight(server, aiogear, aioworker):
    out = aiogear.client(server, "multi", f"{aioworker}_rev", 10)
    assert out == {"handles": 10, "types": ["WorkComplete"],
                   "results": sorted(f"job-{i}"[::-1] for i in range(10))}


def test_aiogear_large_payload(server, aiogear, aioworker):
    out = aiogear.client(server, "big", f"{aioworker}_echo", BIG, timeout=90)
    assert out == {"type": "WorkComplete", "size": BIG, "same": True}


def test_aiogear_exception_as_fail(server, aiogear, aioworker):
    """The worker raises (WORK_EXCEPTION); a client without the exceptions
    option gets WORK_FAIL. aiogear keeps the handle up to the first NUL, so
    gearmand's `handle\\0` payload reads the same as mpgearman's."""
    out = aiogear.client(server, "exc", f"{aioworker}_exc")
    assert out == {"type": "WorkFail", "handle": out["created"], "created": out["created"]}


def test_aiogear_exception_with_option(server, aiogear, aioworker):
    out = aiogear.client(server, "exc", f"{aioworker}_exc", "exceptions")
    assert out == {"option": ["bytes", "exceptions"], "type": "WorkException",
                   "handle": out["created"], "exception": "boom: payload",
                   "created": out["created"]}


def test_aiogear_admin(server, aiogear, aioworker):
    out = aiogear.client(server, "admin", f"{aioworker}_rev")
    assert out["status"] == [{"function": f"{aioworker}_rev", "total": 0, "running": 0,
                              "available_workers": 1}]
    names = ("echo", "exc", "gated", "progress", "rev", "seq", "slowrev", "urev")
    assert out["workers"] == [{"name": "-", "functions": [f"{aioworker}_{n}" for n in names]}]
    assert out["version"].startswith("OK "), out


def test_pygear_worker_lost_job_requeued(server, pylib, spawn, unique_name, tmp_path):
    """The worker holding a foreground job dies: the job goes back to the
    queue and a second worker completes it for the waiting client."""
    prefix = unique_name("pl")
    first = pylib.worker(server, spawn, prefix)
    release = tmp_path / "release"
    client = spawn(pylib.client_cmd(server, "fg", f"{prefix}_gated", release),
                   env=pylib.env, cwd=CLIENTS)
    wait_for(lambda: client.poll() is not None or
             server.status().get(f"{prefix}_gated", (0, 0))[1] == 1,
             15, 0.02, "the first worker to run the job")
    first.kill()
    first.wait(5)
    wait_for(lambda: server.status().get(f"{prefix}_gated", (0, 0, 1))[1:] == (0, 0),
             10, 0.02, "the job to be requeued")
    release.touch()
    pylib.worker(server, spawn, prefix)
    out = spawned_json(client)
    assert out["state"] == "COMPLETE" and out["result"] == "released", out


def test_pygearman_admin_jobs_and_cancel(server, spawn, unique_name):
    """pygearman's admin client (the only one of the three whose getpid,
    show jobs, show unique jobs and cancel job work): a foreground job that
    no worker can take is listed, cancelled, and its client sees it fail."""
    lib = py_lib("pygearman", [], [sys.executable, str(CLIENTS / "pygear_client.py"),
                                   "pygearman"], "exc")
    func = unique_name("nobody")
    client = spawn(lib.client_cmd(server, "fg", func, "data"), env=lib.env, cwd=CLIENTS)
    wait_queued(server, func, 1, client)
    out = lib.client(server, "jobs", func)
    assert re.fullmatch(r"OK \d+", out["pid"]), out
    assert len(out["unique_jobs"]) == 1 and re.fullmatch(r"[0-9a-f]{32}", out["unique_jobs"][0][0])
    handle = out["jobs"][0]["handle"]
    assert out["jobs"] == [{"handle": handle, "queued": 0, "canceled": 0, "enabled": 0}]
    assert out["cancel"] == ["OK\r"]
    assert out["cancel_unknown"] == "ERR UNKNOWN_JOB\r"
    assert out["after"] == [{"handle": handle, "queued": 0, "canceled": 1, "enabled": 0}]
    fg = spawned_json(client)
    assert fg["state"] == "FAILED" and fg["handle"] == handle, fg
