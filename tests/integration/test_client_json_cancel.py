"""The client and worker library's JSON jobs, cancel, per-call timeouts,
failure reasons, runs that outlive their timeout and workers as context
managers, against real servers (mpgearman and Debian's gearmand)."""
import asyncio
import logging
import threading
import time

import pytest

from clientlib import worker_thread
from gearproto import wait_for
from mpgearman import AsyncClient, AsyncWorker, Client, Worker, WorkFailed
from mpgearman.client import JobFailed, Timeout


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_json_call_submit_and_map(server, fname):
    def total(numbers):
        return {"sum": sum(numbers), "n": len(numbers)}
    with worker_thread(server.address, {fname: {"fn": total, "json": True}},
                       [(server, fname)]), Client(server.address, timeout=10) as client:
        assert client.call(fname, json=[1, 2, 3]) == {"sum": 6, "n": 3}
        assert client.submit(fname, json=[]).result() == {"sum": 0, "n": 0}
        assert client.map(fname, [[1], [2, 2]], json=True) == \
            [{"sum": 1, "n": 1}, {"sum": 4, "n": 2}]
        # Without json= the bytes are the client's business.
        assert client.call(fname, b"[5]") == b'{"sum":5,"n":1}'


def test_json_with_asyncio(server, fname):
    async def body():
        worker = AsyncWorker(server.address)

        @worker.function(fname, json=True)
        async def echo(obj):
            return {"got": obj}
        task = asyncio.ensure_future(worker.run())
        try:
            await asyncio.to_thread(server.wait_workers, fname)
            async with AsyncClient(server.address, timeout=10) as client:
                one = await client.call(fname, json={"a": [1, None]})
                job = await client.submit(fname, json="x")
                return one, await job.result(), await client.map(fname, [1, 2], json=True)
        finally:
            worker.stop()
            await asyncio.wait_for(task, 10)
    assert run(body()) == ({"got": {"a": [1, None]}}, {"got": "x"},
                           [{"got": 1}, {"got": 2}])


def ran_after(server, fname, marker):
    """Start a worker recording the payloads it runs until `marker` ran; the
    jobs queued before the marker have been reached by then."""
    seen = []

    def record(job):
        seen.append(job.data)
        return b"ok"
    with worker_thread(server.address, {fname: record}, [(server, fname)]), \
            Client(server.address, timeout=10) as client:
        assert client.call(fname, marker) == b"ok"
    return seen


def test_cancel_removes_queued_jobs(server, fname):
    with Client(server.address, timeout=10) as client:
        foreground = client.submit(fname, b"fg")
        background = client.submit(fname, b"bg", background=True)
        kept = client.submit(fname, b"kept", background=True)
        assert foreground.cancel() is True
        with pytest.raises(JobFailed) as info:
            foreground.result()
        assert info.value.reason == "cancelled"
        assert foreground.cancel() is False          # it has ended
        assert background.cancel() is True
    assert ran_after(server, fname, b"marker") == [b"kept", b"marker"]


def test_async_cancel(server, fname):
    async def body():
        async with AsyncClient(server.address, timeout=10) as client:
            job = await client.submit(fname, b"fg")
            assert await job.cancel() is True
            with pytest.raises(JobFailed, match="cancelled"):
                await job.result()
    run(body())
    assert ran_after(server, fname, b"marker") == [b"marker"]


def test_per_call_timeout_and_cancel_on_timeout(server, fname):
    with Client(server.address, cancel_on_timeout=True) as client:
        started = time.monotonic()
        with pytest.raises(Timeout, match="cancelled on its server"):
            client.call(fname, b"gave up", timeout=1)
        assert time.monotonic() - started < 5
    with Client(server.address) as client:
        # Without cancel_on_timeout the job stays queued while its client
        # is connected, and runs later.
        with pytest.raises(Timeout):
            client.call(fname, b"left queued", timeout=0.5)
        assert ran_after(server, fname, b"marker") == [b"left queued", b"marker"]


def test_async_cancel_on_timeout(server, fname):
    async def body():
        async with AsyncClient(server.address, cancel_on_timeout=True) as client:
            with pytest.raises(Timeout, match="cancelled on its server"):
                await client.call(fname, b"gave up", timeout=0.5)
    run(body())
    assert ran_after(server, fname, b"marker") == [b"marker"]


def test_workfailed_reason_reaches_the_client(server, fname):
    def refuse(job):
        raise WorkFailed("no such user: " + job.data.decode())
    with worker_thread(server.address, {fname: refuse}, [(server, fname)]), \
            Client(server.address, timeout=10) as client:
        with pytest.raises(JobFailed) as info:
            client.call(fname, b"42")
        assert info.value.reason == "no such user: 42"
        job = client.submit(fname, b"7")
        assert list(job.events()) == []           # the reason is not a warning
        with pytest.raises(JobFailed, match="no such user: 7$"):
            job.result()


def test_a_run_beyond_its_timeout_is_dropped_not_doubled(server, fname, caplog):
    """The server takes the job back at the timeout; the slow first run's
    result is dropped with a warning and the job's next run answers."""
    runs = []

    def slow_once(job):
        runs.append(job.expired)
        if len(runs) == 1:
            time.sleep(1.6)
            assert job.expired
            return b"first"
        return b"second"
    with caplog.at_level(logging.WARNING, "mpgearman.client"), \
            worker_thread(server.address, {fname: (slow_once, 1)}, [(server, fname)]), \
            Client(server.address, timeout=20) as client:
        assert client.call(fname, b"x") == b"second"
    assert runs == [False, False]
    assert "beyond its 1 s timeout" in caplog.text and "result is dropped" in caplog.text


def test_async_worker_stops_a_coroutine_at_its_timeout(server, fname, caplog):
    runs = []

    async def body():
        worker = AsyncWorker(server.address)

        @worker.function(fname, timeout=1)
        async def slow_once(job):
            runs.append(job.data)
            if len(runs) == 1:
                await asyncio.sleep(10)
            return b"quick"
        async with worker:
            task = asyncio.ensure_future(worker.run())
            await asyncio.to_thread(server.wait_workers, fname)
            async with AsyncClient(server.address, timeout=20) as client:
                started = time.monotonic()
                result = await client.call(fname, b"x")
                elapsed = time.monotonic() - started
        await asyncio.wait_for(task, 10)    # leaving `async with` stopped it
        return result, elapsed
    with caplog.at_level(logging.WARNING, "mpgearman.client"):
        result, elapsed = run(body())
    assert result == b"quick" and len(runs) == 2 and elapsed < 8
    assert "was stopped at its 1 s timeout" in caplog.text


def test_worker_as_a_context_manager(server, fname):
    with Worker(server.address) as worker:
        worker.register(fname, lambda job: job.data.upper())
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        server.wait_workers(fname)
        with Client(server.address, timeout=10) as client:
            assert client.call(fname, b"abc") == b"ABC"
    thread.join(10)
    assert not thread.is_alive()
    wait_for(lambda: worker._wake_r.fileno() == -1, 5, 0.05, "the wake socket to close")
