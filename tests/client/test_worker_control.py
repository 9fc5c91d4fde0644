"""Worker and AsyncWorker control without a server: stop() before run()
makes run() return at once, a missing server is retried (never fatal), and
bad arguments are one-line errors."""
import asyncio
import socket
import threading
import time

import pytest

from mpgearman import AsyncWorker, Worker
from mpgearman.client import GearmanError


@pytest.fixture
def dead_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))           # bound, never listening: refused
        yield f"127.0.0.1:{s.getsockname()[1]}"


def test_stop_before_run(dead_address):
    worker = Worker(dead_address)
    worker.register("f", lambda job: b"")
    worker.stop()
    started = time.monotonic()
    worker.run()
    assert time.monotonic() - started < 2


def test_unreachable_server_is_retried_until_stopped(dead_address):
    worker = Worker(dead_address)
    worker.register("f", lambda job: b"")
    thread = threading.Thread(target=worker.run)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()
    state = worker.pool.states[dead_address]
    assert state.backoff >= 0.2 and "refused" in state.last_error.lower()
    worker.stop()
    thread.join(5)
    assert not thread.is_alive()


def test_async_worker_retries_then_stops(dead_address):
    async def main():
        worker = AsyncWorker(dead_address)
        worker.register("f", lambda job: b"")
        task = asyncio.ensure_future(worker.run())
        await asyncio.sleep(0.4)
        assert not task.done()
        assert worker.pool.states[dead_address].backoff >= 0.2
        worker.stop()
        await asyncio.wait_for(task, 5)
    asyncio.run(main())


def test_worker_arguments():
    with pytest.raises(GearmanError):
        Worker("127.0.0.1:1", concurrency=0)
    with pytest.raises(GearmanError, match="no function registered"):
        Worker("127.0.0.1:1").run()
    with pytest.raises(GearmanError):
        AsyncWorker("nonsense:port")
