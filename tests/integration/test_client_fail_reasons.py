"""Why a job failed (OPTION_REQ fail_reasons): after --job-retries worker
losses mpgearman tells a client that asked a WORK_WARNING with the cause
before the WORK_FAIL, and the client raises JobFailed with cause "retries";
a client that did not ask sees exactly gearmand's WORK_FAIL; gearmand
refuses the option and the client carries on with cause "unknown"."""
import asyncio

import pytest

from clientlib import worker_thread
from gearproto import Conn, wait_for
from mpgearman import AsyncClient, Client, WorkFailed
from mpgearman.client import JobFailed
from mpgearman.protocol.packets import PacketType as T


def lose_workers(server, fname, times):
    """`times` workers each take the job and vanish without an answer."""
    for _ in range(times):
        with Conn(server.host, server.port) as w:
            w.send_packet(T.CAN_DO, fname.encode())
            wait_for(lambda: w.call(T.GRAB_JOB).type == T.JOB_ASSIGN, timeout=10)


@pytest.mark.parametrize("kind, cause", [("mpgearman", "retries"), ("gearmand", "unknown")])
def test_retries_exhausted_is_the_cause(server_factory, fname, kind, cause):
    server = server_factory(kind, "--job-retries", "2")
    with Client(server.address, timeout=20) as client:
        job = client.submit(fname, b"x")
        wait_for(lambda: job.handle is not None, timeout=10)
        lose_workers(server, fname, 2)
        with pytest.raises(JobFailed) as info:
            job.result()
    assert info.value.cause == cause
    if kind == "mpgearman":
        assert info.value.reason == "retries exhausted after 2 attempts: worker lost"


def test_retries_exhausted_with_asyncio(server_factory, fname):
    server = server_factory("mpgearman", "--job-retries", "1")

    async def body():
        async with AsyncClient(server.address, timeout=20) as client:
            job = await client.submit(fname, b"x")
            await asyncio.to_thread(lose_workers, server, fname, 1)
            with pytest.raises(JobFailed) as info:
                await job.result()
            return info.value
    error = asyncio.run(asyncio.wait_for(body(), 60))
    assert (error.cause, error.reason) == ("retries", "retries exhausted after 1 attempts: worker lost")


def test_a_client_without_the_option_sees_only_work_fail(server_factory, fname):
    server = server_factory("mpgearman", "--job-retries", "2")
    with Conn(server.host, server.port) as c:
        handle = c.submit(T.SUBMIT_JOB, fname.encode(), b"", b"x")
        lose_workers(server, fname, 2)
        c.expect(T.WORK_FAIL, handle, timeout=10)
        c.assert_silent()


def test_a_workers_fail_is_the_workers_against_both_servers(server, fname):
    def no(data):
        raise WorkFailed("no such user")

    def bare(data):
        raise WorkFailed()
    with worker_thread(server.address, {fname: no, fname + "b": bare},
                       [(server, fname), (server, fname + "b")]), \
            Client(server.address, timeout=20) as client:
        assert client.echo(b"still fine") == b"still fine"
        with pytest.raises(JobFailed) as info:
            client.call(fname, b"x")
        assert (info.value.cause, info.value.reason) == ("worker", "no such user")
        with pytest.raises(JobFailed) as info:
            client.call(fname + "b", b"x")
    want = "worker" if server.kind == "mpgearman" else "unknown"
    assert info.value.cause == want
