"""Third-party Node.js Gearman libraries against both servers, and workers
of one language serving clients of the other.

- `gearman` 2.1.0 (mreinstein/node-gearman): a thin layer over the packets,
  client, worker and admin helpers;
- `node-gearman` 0.2.2 (andris9): registerWorker / submitJob streams.

The scripts live in clients/node/; tests/run installs clients/node/package.json
into ${XDG_CACHE_HOME:-~/.cache}/mpgearman-tests/node (MPGEARMAN_NODE_MODULES
points at another node_modules). Clients print one JSON object.

Library quirks the assertions account for (identical on both servers):
`gearman` reads the STATUS_RES denominator as one byte ('2' -> 50), sends
CAN_DO_TIMEOUT with the timeout as 4 binary bytes, and its admin helpers
parse only the first chunk of a listing; `node-gearman` appends an empty
argument to background submissions (the worker sees workload + NUL) and
cannot poll status or see WORK_STATUS.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gearproto import wait_for
from scriptlib import ScriptLib, node_lib, py_lib, spawned_json, wait_queued

PY_CLIENTS = Path(__file__).parent / "clients" / "pylibs"
BIG = 3 * 1024 * 1024 + 7


def py_script_lib(name: str, script: str, *lib_arg: str) -> ScriptLib:
    return py_lib(name, [sys.executable, PY_CLIENTS / f"{script}_worker.py", *lib_arg],
                  [sys.executable, str(PY_CLIENTS / f"{script}_client.py"), *lib_arg], "exc")


@pytest.fixture
def gearmanjs() -> ScriptLib:
    return node_lib("gearman", "gearman", "tmo")


@pytest.fixture
def nodegearman() -> ScriptLib:
    return node_lib("node-gearman", "nodegearman", "record")


@pytest.fixture
def gjs_worker(server, gearmanjs, spawn, unique_name) -> str:
    prefix = unique_name("gj")
    gearmanjs.worker(server, spawn, prefix)
    return prefix


@pytest.fixture
def ng_worker(server, nodegearman, spawn, unique_name, tmp_path) -> str:
    prefix = unique_name("ng")
    nodegearman.worker(server, spawn, prefix, tmp_path / "record")
    return prefix


# ---------------------------------------------------------------------------
# gearman 2.x

def test_gearmanjs_foreground(server, gearmanjs, gjs_worker):
    out = gearmanjs.client(server, "fg", f"{gjs_worker}_rev", "hello world")
    assert out == {"created": out["created"], "handle": out["created"], "result": "dlrow olleh"}


def test_gearmanjs_can_do_timeout_registration(server, gearmanjs, gjs_worker):
    """addFunction(name, 5000) sends CAN_DO_TIMEOUT `name\\0` + 00 00 13 88
    (binary, not decimal): gearmand reads that as no timeout and the
    function works like a CAN_DO one."""
    out = gearmanjs.client(server, "fg", f"{gjs_worker}_tmo", "hello")
    assert out["result"] == "olleh", out


def test_gearmanjs_partial_data_and_status(server, gearmanjs, gjs_worker):
    out = gearmanjs.client(server, "progress", f"{gjs_worker}_progress", "abc")
    assert out["result"] == "cba"
    assert out["events"] == [["WORK_STATUS", "1", "2"], ["WORK_DATA", "part1", None],
                             ["WORK_WARNING", "warn1", None], ["WORK_STATUS", "2", "2"]]


def test_gearmanjs_background_status(server, gearmanjs, gjs_worker, tmp_path):
    out = gearmanjs.client(server, "bgstatus", f"{gjs_worker}_gated", tmp_path / "release")
    assert out["running"] == ["1", "1", "1", ord("2")], out
    assert out["finished"] == ["0", "0", "0", ord("0")]


def test_gearmanjs_foreground_attaches_to_running_background_job(
        server, gearmanjs, gjs_worker, tmp_path, unique_name):
    """A foreground submission with the unique_id of a background job that
    is already running gets the same handle and that job's WORK_COMPLETE."""
    out = gearmanjs.client(server, "attach", f"{gjs_worker}_gated", unique_name("at"),
                           tmp_path / "release")
    assert out["fg"] == out["bg"], out
    assert out["events"] == [["WORK_COMPLETE", out["bg"], "released"]]


def test_gearmanjs_priority(server, gearmanjs, spawn, unique_name):
    prefix = unique_name("gp")
    client = spawn(gearmanjs.client_cmd(server, "priority", f"{prefix}_seq"), env=gearmanjs.env)
    wait_queued(server, f"{prefix}_seq", 3, client)
    gearmanjs.worker(server, spawn, prefix)
    out = spawned_json(client)
    assert out["results"] == {"high": "1:high", "normal": "2:normal", "low": "3:low"}


def test_gearmanjs_unique_coalescing(server, gearmanjs, spawn, unique_name):
    """Same unique_id twice on one connection: one job, handed out with
    GRAB_JOB_UNIQ (the worker sees the unique), completed twice."""
    prefix = unique_name("gu")
    gearmanjs.worker(server, spawn, prefix, "grabuniq")
    uniq = unique_name("u")
    out = gearmanjs.client(server, "unique", f"{prefix}_urev", uniq, "first", "second")
    h1, h2 = out["handles"]
    assert h1 == h2, out
    assert out["completions"] == [[h1, f"{uniq}:tsrif"]] * 2


def test_gearmanjs_jobs_in_flight(server, gearmanjs, gjs_worker, spawn):
    gearmanjs.worker(server, spawn, gjs_worker)
    server.wait_workers(f"{gjs_worker}_rev", 2)
    out = gearmanjs.client(server, "multi", f"{gjs_worker}_rev", 10)
    assert out == {"handles": 10, "results": sorted(f"job-{i}"[::-1] for i in range(10))}


def test_gearmanjs_large_payload(server, gearmanjs, gjs_worker):
    out = gearmanjs.client(server, "big", f"{gjs_worker}_echo", BIG, timeout=90)
    assert out == {"size": BIG, "same": True}


def test_gearmanjs_fail(server, gearmanjs, gjs_worker):
    out = gearmanjs.client(server, "fail", f"{gjs_worker}_fail")
    assert out["fail_handle"] == out["created"], out


def test_gearmanjs_exception_without_option(server, gearmanjs, gjs_worker):
    """WORK_EXCEPTION to a client without the option arrives as WORK_FAIL;
    gearmand's carries `handle\\0` (PROTOCOL.md 6 #16), so the handle the
    library reports does not match the one JOB_CREATED gave; mpgearman
    sends the bare handle."""
    out = gearmanjs.client(server, "exc", f"{gjs_worker}_exc")
    suffix = "\0" if server.kind == "gearmand" else ""
    assert out["events"] == [["WORK_FAIL", out["created"] + suffix]], out


def test_gearmanjs_exception_with_option(server, gearmanjs, gjs_worker):
    out = gearmanjs.client(server, "exc", f"{gjs_worker}_exc", "exceptions")
    assert out["option"] == "exceptions"
    assert out["events"] == [["WORK_EXCEPTION", out["created"], "boom: payload"]], out


def test_gearmanjs_admin(server, gearmanjs, gjs_worker):
    out = gearmanjs.client(server, "admin", f"{gjs_worker}_rev")
    assert out["echo"] == "ping"
    assert out["status"] == {"total": 0, "running": 0, "available_workers": 1}
    assert out["status_has_dot"] is True
    names = ("echo", "exc", "fail", "gated", "progress", "rev", "seq", "slowrev", "tmo", "urev")
    assert out["workers"] == [{"id": "-", "functions": [f"{gjs_worker}_{n}" for n in names]}]
    assert out["drop_busy"] == "there are still connected workers or executing clients\r"
    assert out["drop_unknown"] == "function not found\r"


# ---------------------------------------------------------------------------
# node-gearman 0.2.x

def test_nodegearman_foreground(server, nodegearman, ng_worker):
    out = nodegearman.client(server, "fg", f"{ng_worker}_rev", "hello world")
    assert out["result"] == "dlrow olleh" and out["error"] is None, out
    assert out["handle"].startswith("H:")


def test_nodegearman_partial_data(server, nodegearman, ng_worker):
    out = nodegearman.client(server, "chunks", f"{ng_worker}_chunks")
    assert out == {"chunks": ["part1", "part2", "done"], "error": None}


def test_nodegearman_many_chunks_in_order(server, nodegearman, ng_worker):
    """300 WORK_DATA packets sent back to back, then WORK_COMPLETE: the
    library drops whatever arrives after the completion, so every chunk
    must be forwarded before it, in order."""
    out = nodegearman.client(server, "chunks", f"{ng_worker}_stream", 300)
    assert out["error"] is None
    assert "".join(out["chunks"]) == "".join(f"c{i};" for i in range(300)) + "END"


def test_nodegearman_background(server, nodegearman, ng_worker, tmp_path):
    """A background job runs; the workload reaches the worker byte for byte
    (with the trailing NUL the library adds)."""
    out = nodegearman.client(server, "bg", f"{ng_worker}_record", "abc")
    assert out == {"submitted": True}
    record = tmp_path / "record"
    wait_for(record.exists, 10, 0.02, "the background job to run")
    assert record.read_text() == b"abc\0".hex() + "\n"


def test_nodegearman_priority(server, nodegearman, spawn, unique_name, tmp_path):
    prefix = unique_name("np")
    client = spawn(nodegearman.client_cmd(server, "priority", f"{prefix}_seq"),
                   env=nodegearman.env)
    wait_queued(server, f"{prefix}_seq", 3, client)
    nodegearman.worker(server, spawn, prefix, tmp_path / "record")
    out = spawned_json(client)
    assert out == {"results": ["3:low", "2:normal", "1:high"], "errors": [None] * 3}


def test_nodegearman_unique_coalescing(server, nodegearman, ng_worker, unique_name):
    out = nodegearman.client(server, "unique", f"{ng_worker}_slowrev", unique_name("u"),
                             "first", "second")
    assert out["handles"][0] == out["handles"][1], out
    assert out["results"] == ["tsrif", "tsrif"]


def test_nodegearman_jobs_in_flight(server, nodegearman, ng_worker):
    out = nodegearman.client(server, "multi", f"{ng_worker}_rev", 10)
    assert out == {"results": [f"job-{i}"[::-1] for i in range(10)], "handles": 10,
                   "errors": 0}


def test_nodegearman_many_clients(server, nodegearman, ng_worker, spawn, tmp_path):
    """25 client connections with one job each, two workers."""
    nodegearman.worker(server, spawn, ng_worker, tmp_path / "record2")
    server.wait_workers(f"{ng_worker}_rev", 2)
    out = nodegearman.client(server, "clients", f"{ng_worker}_rev", 25)
    assert out == {"results": [f"client-{i}"[::-1] for i in range(25)], "errors": 0}


def test_nodegearman_large_payload(server, nodegearman, ng_worker):
    out = nodegearman.client(server, "big", f"{ng_worker}_echo", BIG, timeout=90)
    assert out == {"size": BIG, "error": None, "same": True}


def test_nodegearman_fail(server, nodegearman, ng_worker):
    out = nodegearman.client(server, "fail", f"{ng_worker}_fail")
    assert out == {"result": "", "error": "Job failed"}


# ---------------------------------------------------------------------------
# across languages

def test_cross_node_worker_python_client(server, gearmanjs, gjs_worker):
    """pygearman's client sees the status, data and warning packets of a
    `gearman` (Node) worker."""
    py = py_script_lib("pygearman", "pygear", "pygearman")
    out = py.client(server, "progress", f"{gjs_worker}_progress", "abc")
    assert out["state"] == "COMPLETE" and out["result"] == "cba", out
    assert out["data"] == ["part1"] and out["warnings"] == ["warn1"]
    assert out["status"] == [2, 2]


def test_cross_node_worker_aiogear_client(server, nodegearman, ng_worker):
    py = py_script_lib("aiogear", "aiogear")
    out = py.client(server, "multi", f"{ng_worker}_rev", 6)
    assert out == {"handles": 6, "types": ["WorkComplete"],
                   "results": sorted(f"job-{i}"[::-1] for i in range(6))}


def test_cross_python_worker_node_client(server, nodegearman, spawn, unique_name):
    """node-gearman's client against a python3-gearman worker: a result, a
    failure and several jobs at once."""
    py = py_script_lib("python3-gearman", "pygear", "python3-gearman")
    prefix = unique_name("xp")
    py.worker(server, spawn, prefix)
    assert nodegearman.client(server, "fg", f"{prefix}_rev", "hello")["result"] == "olleh"
    assert nodegearman.client(server, "fail", f"{prefix}_fail")["error"] == "Job failed"
    out = nodegearman.client(server, "multi", f"{prefix}_rev", 5)
    assert out["results"] == [f"job-{i}"[::-1] for i in range(5)]


def test_cross_aiogear_worker_node_client(server, gearmanjs, spawn, unique_name):
    """An aiogear worker's WORK_EXCEPTION and WORK_STATUS/DATA reach a
    `gearman` (Node) client."""
    py = py_script_lib("aiogear", "aiogear")
    prefix = unique_name("xa")
    py.worker(server, spawn, prefix)
    out = gearmanjs.client(server, "exc", f"{prefix}_exc", "exceptions")
    assert out["events"] == [["WORK_EXCEPTION", out["created"], "boom: payload"]], out
    out = gearmanjs.client(server, "progress", f"{prefix}_progress", "abc")
    assert out["result"] == "cba"
    assert out["events"] == [["WORK_STATUS", "1", "2"], ["WORK_DATA", "part1", None],
                             ["WORK_WARNING", "warn1", None], ["WORK_STATUS", "2", "2"]]


def test_gearmanjs_background_status_unique(server, gearmanjs, gjs_worker, tmp_path,
                                            unique_name):
    """GET_STATUS_UNIQUE on a background job while it runs, then after it
    finished. The library parses STATUS_RES_UNIQUE with the STATUS_RES
    format, so the 5th field (the denominator) is read as one byte."""
    uniq = unique_name("bu")
    out = gearmanjs.client(server, "bgunique", f"{gjs_worker}_gated", uniq,
                           tmp_path / "release")
    assert out["running"] == [uniq, "1", "1", "1", ord("2")], out
    assert out["finished"] == [uniq, "0", "0", "0", ord("0")]


def test_gearmanjs_cant_do_and_reset_abilities(server, gearmanjs, unique_name):
    """addFunction x3, removeFunction (CANT_DO) one, resetAbilities: the
    admin status worker counts follow."""
    out = gearmanjs.client(server, "abilities", unique_name("ab"))
    assert out == {"registered": [1, 1, 1], "cant_do": [1, 0, 1], "reset": [0, 0, 0]}
