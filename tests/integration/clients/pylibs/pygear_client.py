"""A GearmanClient / GearmanAdminClient from one python-gearman 2.x
descendant (gearman3, pygearman or python3-gearman) for the compat tests.
Prints one JSON object on its last line.

usage: pygear_client.py LIB HOST PORT MODE FUNC [ARG...]
  fg FUNC DATA              submit_job, wait for the result
  progress FUNC DATA        foreground job whose worker sends status/data/warning
  bgstatus FUNC RELEASE     background job polled with get_job_status while the
                            worker holds it, then again after RELEASE is created
  priority FUNC             low, normal and high foreground jobs in one batch
  unique FUNC UNIQ D1 D2    two connections submit the same unique
  multi FUNC N              N foreground jobs in flight at once
  big FUNC SIZE             a SIZE-byte workload through an echo worker
  fail FUNC | exc FUNC      a failing job
  admin FUNC                ping, status, workers, version
  jobs FUNC                 pygearman's getpid, show unique jobs, show jobs,
                            then cancel job on every job listed
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time

from pgload import load, text

lib, host, port, mode, func, *args = sys.argv[1:]
gearman = load(lib)
server = f"{host}:{port}"
TIMEOUT = 20.0
STATES = {gearman.JOB_COMPLETE: "COMPLETE", gearman.JOB_FAILED: "FAILED",
          gearman.JOB_CREATED: "CREATED", gearman.JOB_PENDING: "PENDING"}


def state(request) -> str:
    return STATES.get(request.state, str(request.state))


def summary(request) -> dict:
    return {"state": state(request), "timed_out": request.timed_out,
            "result": None if request.result is None else text(request.result),
            "handle": text(request.job.handle)}


def status_tuple(client, request) -> list:
    st = client.get_job_status(request, poll_timeout=5).status
    return [st.get("known"), st.get("running"), st.get("numerator"), st.get("denominator")]


out: dict = {}
client = gearman.GearmanClient([server])

if mode == "fg":
    out = summary(client.submit_job(func, args[0], poll_timeout=TIMEOUT))

elif mode == "progress":
    req = client.submit_job(func, args[0], poll_timeout=TIMEOUT)
    out = summary(req)
    out["data"] = [text(d) for d in req.data_updates]
    out["warnings"] = [text(w) for w in req.warning_updates]
    st = req.status
    out["status"] = [st.get("numerator"), st.get("denominator")]

elif mode == "bgstatus":
    # Polls on numerator/denominator: gearman3 compares the known/running
    # fields (bytes) with '1' (str), so it always reports them False.
    req = client.submit_job(func, args[0], background=True,
                            wait_until_complete=False, poll_timeout=TIMEOUT)
    out = summary(req)
    deadline = time.monotonic() + TIMEOUT
    st = status_tuple(client, req)
    while st[2:] != [1, 2] and time.monotonic() < deadline:
        time.sleep(0.02)
        st = status_tuple(client, req)
    out["running"] = st
    open(args[0], "w").close()
    while st[2:] != [0, 0] and time.monotonic() < deadline:
        time.sleep(0.02)
        st = status_tuple(client, req)
    out["finished"] = st

elif mode == "priority":
    jobs = [{"task": func, "data": "low", "priority": gearman.PRIORITY_LOW},
            {"task": func, "data": "normal", "priority": gearman.PRIORITY_NONE},
            {"task": func, "data": "high", "priority": gearman.PRIORITY_HIGH}]
    reqs = client.submit_multiple_jobs(jobs, poll_timeout=TIMEOUT)
    out["results"] = [summary(r) for r in reqs]

elif mode == "unique":
    uniq, first, second = args
    other = gearman.GearmanClient([server])
    r1 = client.submit_job(func, first, unique=uniq, wait_until_complete=False,
                           poll_timeout=TIMEOUT)
    r2 = other.submit_job(func, second, unique=uniq, wait_until_complete=False,
                          poll_timeout=TIMEOUT)
    r1 = client.wait_until_jobs_completed([r1], poll_timeout=TIMEOUT)[0]
    r2 = other.wait_until_jobs_completed([r2], poll_timeout=TIMEOUT)[0]
    out["results"] = [summary(r1), summary(r2)]

elif mode == "multi":
    jobs = [{"task": func, "data": f"job-{i}"} for i in range(int(args[0]))]
    reqs = client.submit_multiple_jobs(jobs, poll_timeout=TIMEOUT)
    out["results"] = [summary(r) for r in reqs]
    out["handles"] = len({r["handle"] for r in out["results"]})

elif mode == "big":
    size = int(args[0])
    payload = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    # python3-gearman only accepts str workloads
    req = client.submit_job(func, payload.decode() if lib == "python3-gearman" else payload,
                            poll_timeout=60)
    out = {"state": state(req), "timed_out": req.timed_out}
    result = req.result
    if isinstance(result, str):
        result = result.encode("latin-1")
    out["size"] = None if result is None else len(result)
    out["same"] = result is not None and \
        hashlib.sha256(result).digest() == hashlib.sha256(payload).digest()

elif mode in ("fail", "exc"):
    req = client.submit_job(func, "payload", poll_timeout=TIMEOUT)
    out = summary(req)
    out["exception"] = None if req.exception is None else text(req.exception)

elif mode == "admin":
    # Each call on a fresh admin client; a call that raises is reported as
    # "error" (gearman3 0.2.1 compares bytes lines with str and only gets
    # the version through), the test decides what it expects.
    def call(name, convert):
        admin = gearman.GearmanAdminClient([server], poll_timeout=10)
        try:
            out[name] = convert(getattr(admin, name)())
        except Exception as e:
            out[name] = {"error": type(e).__name__}

    call("ping_server", lambda t: t >= 0)
    call("get_status", lambda rows: [{k: text(v) for k, v in r.items()}
                                     for r in rows if text(r["task"]) == func])
    call("get_workers", lambda rows: [
        {"client_id": text(w["client_id"]), "tasks": sorted(text(t) for t in w["tasks"])}
        for w in rows if func in [text(t) for t in w["tasks"]]])
    call("get_version", text)

elif mode == "jobs":
    def admin():
        return gearman.GearmanAdminClient([server], poll_timeout=10)

    out["pid"] = text(admin().get_pid())
    out["unique_jobs"] = [[text(u) for u in j["unique"]] for j in admin().get_unique_jobs()]
    jobs = [dict(j) for j in admin().get_jobs()]
    out["jobs"] = jobs
    out["cancel"] = [text(admin().cancel_job(j["handle"])) for j in jobs]
    out["cancel_unknown"] = text(admin().cancel_job("H:nowhere:1"))
    out["after"] = [dict(j) for j in admin().get_jobs()]

else:
    sys.exit(f"unknown mode {mode}")

print(json.dumps(out), flush=True)
os._exit(0)
