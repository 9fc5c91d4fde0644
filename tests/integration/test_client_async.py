"""AsyncClient and AsyncWorker against real servers (mpgearman and Debian's
gearmand): the blocking tests' cases, with coroutines."""
import asyncio
import sys
import textwrap
import time

import pytest

from conftest import REPO_ROOT
from gearproto import wait_for
from mpgearman import AsyncClient, AsyncWorker, WorkFailed
from mpgearman.client import (JobException, JobFailed, ServerUnavailable,
                              Timeout, WorkData, WorkStatus, WorkWarning)
from mpgearman.client.servers import ServerPool


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def make_worker(address, fname, **kwargs):
    worker = AsyncWorker(address, **kwargs)

    @worker.function(fname)
    async def reverse(job):
        job.send_status(1, 2)
        job.send_data(b"half")
        job.send_warning("careful")
        await asyncio.sleep(0)
        return job.data[::-1]

    @worker.function(fname + "_sync")
    def blocking(job):
        time.sleep(float(job.data or 0))
        job.send_data(b"from a thread")
        return job.data

    @worker.function(fname + "_boom")
    async def boom(job):
        raise ValueError("async boom")

    @worker.function(fname + "_fail")
    def fail(job):
        raise WorkFailed()
    return worker


async def served(server, fname, body, **worker_kwargs):
    worker = make_worker(server.address, fname, **worker_kwargs)
    task = asyncio.ensure_future(worker.run())
    try:
        await asyncio.to_thread(server.wait_workers, fname)
        async with AsyncClient(server.address, timeout=20) as client:
            return await body(client)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)


def test_jobs_events_failures(server, fname):
    async def body(client):
        assert await client.echo(b"e\0cho") == b"e\0cho"
        job = await client.submit(fname, b"abc", unique="au", priority="high")
        assert job.unique == "au" and job.server == server.address
        assert [ev async for ev in job.events()] == [
            WorkStatus(1, 2), WorkData(b"half"), WorkWarning(b"careful")]
        assert await job.result() == b"cba"
        assert await client.call(fname + "_sync", b"0.01") == b"0.01"
        with pytest.raises(JobException, match="ValueError: async boom"):
            await client.call(fname + "_boom")
        with pytest.raises(JobFailed):
            await client.call(fname + "_fail", priority="low")
    run(served(server, fname, body))


def test_map_order_concurrency_and_result_to(server, fname, tmp_path):
    async def body(client):
        items = [str(i).encode() for i in range(200)]
        assert await client.map(fname, items, concurrency=16) == [i[::-1] for i in items]
        started = time.monotonic()
        assert await client.map(fname + "_sync", [b"0.4"] * 4) == [b"0.4"] * 4
        assert time.monotonic() - started < 1.3
        mixed = await client.map(fname + "_boom", [b"1"], return_exceptions=True)
        assert isinstance(mixed[0], JobException)
        job = await client.submit(fname + "_sync", b"0.05")
        out = tmp_path / "result"
        assert await job.result_to(out) == len(b"from a thread0.05")
        assert out.read_bytes() == b"from a thread0.05"
    run(served(server, fname, body, concurrency=4))


def test_background_status_and_timeout(server, fname):
    async def body():
        async with AsyncClient(server.address, timeout=10) as client:
            job = await client.submit(fname, b"x", unique="abg", background=True)
            assert job.done and (await client.status(job.handle)).known
            assert (await client.status_unique("abg")).waiting == 0
            fg = await client.submit(fname, b"y")
            with pytest.raises(Timeout):
                await fg.result(timeout=0.2)
    run(body())


def test_foreground_job_moves_when_its_server_dies(server_factory, fname):
    a, b = server_factory("mpgearman"), server_factory("mpgearman")
    addresses = [a.address, b.address]
    pool = ServerPool(addresses)
    unique = next(f"m{i}" for i in range(1000) if pool.candidates(f"m{i}")[0] == a.address)

    async def body():
        worker = make_worker(b.address, fname)
        task = asyncio.ensure_future(worker.run())
        await asyncio.to_thread(b.wait_workers, fname)
        async with AsyncClient(addresses, timeout=20) as client:
            job = await client.submit(fname, b"abc", unique=unique)
            assert job.server == a.address
            await asyncio.to_thread(a.stop)
            assert await job.result() == b"cba" and job.server == b.address
        async with AsyncClient(a.address, connect_timeout=2) as client:
            with pytest.raises(ServerUnavailable):
                await client.submit(fname, b"x")
        worker.stop()
        await asyncio.wait_for(task, 10)
    run(body())


ASYNC_WORKER = """
import asyncio, sys
sys.path.insert(0, {root!r})
from mpgearman import AsyncWorker
worker = AsyncWorker({address!r})

@worker.function({fname!r})
async def slow(job):
    print("started", flush=True)
    await asyncio.sleep(0.7)
    return b"done"

asyncio.run(worker.run())
print("stopped", flush=True)
"""


def test_async_worker_sigterm_finishes_the_job(server, fname, spawn, tmp_path):
    import signal
    script = tmp_path / "aworker.py"
    script.write_text(textwrap.dedent(ASYNC_WORKER.format(
        root=str(REPO_ROOT), address=server.address, fname=fname)))
    proc = spawn([sys.executable, script])
    server.wait_workers(fname)

    async def body():
        async with AsyncClient(server.address, timeout=20) as client:
            job = await client.submit(fname, b"")
            await asyncio.to_thread(wait_for, lambda: b"started" in proc.out_path.read_bytes(),
                                    10, 0.02, "job start")
            proc.send_signal(signal.SIGTERM)
            assert await job.result() == b"done"
    run(body())
    assert proc.wait(10) == 0
    assert proc.out_path.read_bytes().endswith(b"stopped\n")
