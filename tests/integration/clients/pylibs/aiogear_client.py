"""aiogear (asyncio) Client / CallbackClient / Admin for the compat tests.
Prints one JSON object on its last line.

usage: aiogear_client.py HOST PORT MODE FUNC [ARG...]
  fg FUNC DATA              submit_job, wait_job
  progress FUNC DATA        CallbackClient: status/data/warning updates
  bgstatus FUNC RELEASE     submit_job_bg polled with get_status
  priority FUNC             submit_job_low, submit_job, submit_job_high
  unique FUNC UNIQ D1 D2    the same uuid submitted twice
  multi FUNC N              N foreground jobs in flight at once
  big FUNC SIZE             a SIZE-byte workload through an echo worker
  exc FUNC [exceptions]     a job whose worker raises; with "exceptions"
                            the client first sends OPTION_REQ exceptions
  admin FUNC                Admin: status, workers, version

aiogear matches replies to requests by packet type in FIFO order, so with
several jobs in flight a future may receive another job's WORK_COMPLETE;
results are therefore reported by the handle inside each packet.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time

from aiogear import Admin, CallbackClient, Client

host, port, mode, func, *args = sys.argv[1:]
port = int(port)
TIMEOUT = 20.0


def done(resp) -> dict:
    kind = type(resp).__name__
    if kind == "WorkComplete":
        return {"type": kind, "handle": resp.handle, "result": resp.result}
    if kind == "WorkException":
        return {"type": kind, "handle": resp.handle, "exception": resp.exception}
    return {"type": kind, "handle": resp.handle}


async def connect(factory):
    loop = asyncio.get_running_loop()
    proto = factory(loop=loop)
    await loop.create_connection(lambda: proto, host, port)
    return proto


async def submit(client, method, data, **kw):
    # No wait_for here: its extra task would let aiogear drop the handle of
    # a job that already finished before submit_and_wait() looks it up.
    # main() as a whole is bounded instead.
    created = await getattr(client, method)(func, data, **kw)
    return created.handle


async def submit_and_wait(client, method, data, **kw):
    """The result future must be taken right after JOB_CREATED: aiogear
    drops a handle from client.handles as soon as its job finished."""
    handle = await submit(client, method, data, **kw)
    return handle, client.wait_job(handle)


async def status(client, handle):
    st = await asyncio.wait_for(client.get_status(handle), TIMEOUT)
    return [st.known, st.running, st.numerator, st.denominator]


async def main() -> dict:
    out: dict = {}
    if mode == "fg":
        client = await connect(Client)
        handle, wait = await submit_and_wait(client, "submit_job", args[0])
        out = done(await asyncio.wait_for(wait, TIMEOUT))
        out["created"] = handle

    elif mode == "progress":
        client = await connect(CallbackClient)
        events = []

        async def update(kind, uuid, data):
            if kind != "progress":
                events.append([kind, data])
        client.set_update_callback(update)
        accepted, completed = await client.submit_jobs(func, [("p-uuid", args[0])])
        results = list(await asyncio.wait_for(completed, TIMEOUT))
        await asyncio.sleep(0)          # let the last callbacks run
        out = {"results": results, "events": events}

    elif mode == "bgstatus":
        client = await connect(Client)
        handle = await submit(client, "submit_job_bg", args[0])
        out["created"] = handle
        deadline = time.monotonic() + TIMEOUT
        st = await status(client, handle)
        while st != [True, True, 1, 2] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            st = await status(client, handle)
        out["running"] = st
        open(args[0], "w").close()
        while st[0] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            st = await status(client, handle)
        out["finished"] = st

    elif mode == "priority":
        client = await connect(Client)
        handles, waits = {}, []
        for method, data in (("submit_job_low", "low"), ("submit_job", "normal"),
                             ("submit_job_high", "high")):
            handle, wait = await submit_and_wait(client, method, data)
            handles[handle] = data
            waits.append(wait)
        results = [done(r) for r in await asyncio.wait_for(asyncio.gather(*waits), TIMEOUT)]
        out["results"] = {handles[r["handle"]]: r["result"] for r in results}

    elif mode == "unique":
        uniq, first, second = args
        client = await connect(Client)
        h1, w1 = await submit_and_wait(client, "submit_job", first, uuid=uniq)
        h2, w2 = await submit_and_wait(client, "submit_job", second, uuid=uniq)
        results = await asyncio.wait_for(asyncio.gather(w1, w2), TIMEOUT)
        out = {"handles": [h1, h2], "results": [done(r) for r in results]}

    elif mode == "multi":
        client = await connect(Client)
        n = int(args[0])
        pairs = await asyncio.gather(
            *(submit_and_wait(client, "submit_job", f"job-{i}") for i in range(n)))
        handles = [h for h, _ in pairs]
        waits = [w for _, w in pairs]
        results = [done(r) for r in await asyncio.wait_for(asyncio.gather(*waits), TIMEOUT)]
        out = {"handles": len(set(handles)),
               "results": sorted(r["result"] for r in results if r["type"] == "WorkComplete"),
               "types": sorted({r["type"] for r in results})}

    elif mode == "big":
        client = await connect(Client)
        size = int(args[0])
        payload = ("0123456789abcdef" * (size // 16 + 1))[:size]
        handle, wait = await submit_and_wait(client, "submit_job", payload)
        resp = await asyncio.wait_for(wait, 60)
        result = getattr(resp, "result", None)
        out = {"type": type(resp).__name__,
               "size": None if result is None else len(result),
               "same": result is not None and
               hashlib.sha256(result.encode()).digest() == hashlib.sha256(payload.encode()).digest()}

    elif mode == "exc":
        client = await connect(Client)
        if args and args[0] == "exceptions":
            opt = await asyncio.wait_for(client.option_req("exceptions"), TIMEOUT)
            out["option"] = [type(opt).__name__, opt.decode() if isinstance(opt, bytes) else opt]
        handle, wait = await submit_and_wait(client, "submit_job", "payload")
        out.update(done(await asyncio.wait_for(wait, TIMEOUT)))
        out["created"] = handle

    elif mode == "admin":
        admin = await connect(Admin)
        st = await asyncio.wait_for(admin.status(), TIMEOUT)
        out["status"] = [row for row in st if row["function"] == func]
        workers = await asyncio.wait_for(admin.workers(), TIMEOUT)
        out["workers"] = [dict(name=w["name"], functions=sorted(w["functions"]))
                          for w in workers if func in w["functions"]]
        out["version"] = await asyncio.wait_for(admin.version(), TIMEOUT)

    else:
        sys.exit(f"unknown mode {mode}")
    return out


print(json.dumps(asyncio.run(asyncio.wait_for(main(), 90))), flush=True)
os._exit(0)
