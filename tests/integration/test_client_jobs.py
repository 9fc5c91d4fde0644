"""Client against real servers (mpgearman and Debian's gearmand): echo,
foreground and background jobs at every priority, events, failures,
status, scheduled jobs, map and timeouts."""
import time

import pytest

from clientlib import worker_thread
from mpgearman import Client, WorkFailed
from mpgearman.client import (GearmanError, JobException, JobFailed, JobStatus,
                              ServerUnavailable, Timeout, WorkData, WorkStatus,
                              WorkWarning)


def reverse(job):
    job.send_status(1, 2)
    job.send_data(b"half")
    job.send_warning("careful")
    return job.data[::-1]


def test_echo(server):
    with Client(server.address, timeout=10) as client:
        assert client.echo(b"ping\0pong") == b"ping\0pong"
        assert client.echo("txt", server=server.address) == b"txt"


def test_foreground_events_then_result(server, fname):
    with worker_thread(server.address, {fname: reverse}, [(server, fname)]), \
            Client(server.address, timeout=10) as client:
        job = client.submit(fname, "abc", unique="u1", priority="high")
        assert job.handle and job.unique == "u1" and job.server == server.address
        assert list(job.events()) == [WorkStatus(1, 2), WorkData(b"half"),
                                      WorkWarning(b"careful")]
        assert job.result() == b"cba" and job.done
        assert client.call(fname, b"xy", priority="low") == b"yx"


def test_failures_raise_clear_exceptions(server, fname, unique_name):
    boom, fail = unique_name("boom"), unique_name("fail")

    def raises(job):
        raise KeyError("nope")

    def fails(job):
        raise WorkFailed()
    with worker_thread(server.address, {boom: raises, fail: fails},
                       [(server, boom), (server, fail)]), \
            Client(server.address, timeout=10) as client:
        with pytest.raises(JobException) as info:
            client.call(boom)
        assert info.value.message == "KeyError: 'nope'"
        with pytest.raises(JobFailed):
            client.call(fail)


def test_background_status_and_status_unique(server, fname):
    with Client(server.address, timeout=10) as client:
        job = client.submit(fname, b"x", unique="bg-u", background=True)
        assert job.done and job.handle
        assert client.status(job.handle) == JobStatus(True, False, 0, 0)
        assert client.status(job.handle, server=server.address).known
        status = client.status_unique("bg-u")
        assert status.known and not status.running and status.waiting == 0
        assert not client.status("H:nohost:999999").known

    done = []
    with worker_thread(server.address, {fname: lambda job: done.append(job.data)},
                       [(server, fname)]):
        deadline = time.monotonic() + 10
        while not done and time.monotonic() < deadline:
            time.sleep(0.02)
    assert done == [b"x"]


def test_scheduled_job_runs(server, fname):
    with worker_thread(server.address, {fname: reverse}, [(server, fname)]), \
            Client(server.address, timeout=10) as client:
        job = client.submit(fname, b"later", when=time.time() - 1)
        assert job.background and job.done
        deadline = time.monotonic() + 10
        while client.status(job.handle).known and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.status(job.handle).known


def test_map_keeps_input_order(server, fname, unique_name):
    flaky = unique_name("flaky")

    def maybe(job):
        if job.data == b"3":
            raise ValueError("three")
        return job.data * 2
    with worker_thread(server.address, {fname: reverse, flaky: maybe},
                       [(server, fname), (server, flaky)], concurrency=4), \
            Client(server.address, timeout=20) as client:
        items = [str(i).encode() for i in range(300)]
        assert client.map(fname, items, concurrency=20) == [i[::-1] for i in items]
        mixed = client.map(flaky, [b"1", b"3", b"5"], return_exceptions=True)
        assert mixed[0] == b"11" and mixed[2] == b"55"
        assert isinstance(mixed[1], JobException)
        with pytest.raises(JobException):
            client.map(flaky, [b"1", b"3", b"5"], concurrency=1)


def test_result_timeout_is_clear_and_the_job_can_still_finish(server, fname):
    with Client(server.address, timeout=10) as client:
        job = client.submit(fname, b"abc")
        started = time.monotonic()
        with pytest.raises(Timeout, match="no answer within 0.3 s"):
            job.result(timeout=0.3)
        assert time.monotonic() - started < 3
        with worker_thread(server.address, {fname: reverse}):
            assert job.result(timeout=10) == b"cba"


def test_no_server_is_server_unavailable(unique_name):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]       # bound, not listening: refused
        with Client(f"127.0.0.1:{port}", connect_timeout=2) as client:
            with pytest.raises(ServerUnavailable) as info:
                client.submit("f", b"x")
    assert f"127.0.0.1:{port}" in str(info.value) and "\n" not in str(info.value)


def test_bad_arguments_are_one_line_errors(server):
    with Client(server.address) as client:
        for kwargs in ({"priority": "urgent"}, {"unique": "x" * 64},
                       {"when": "tomorrow"}, {"when": 5, "priority": "high"}):
            with pytest.raises(GearmanError) as info:
                client.submit("f", **kwargs)
            assert "\n" not in str(info.value)
        with pytest.raises(GearmanError):
            client.submit("", b"x")
    with pytest.raises(GearmanError):
        client.echo()


def test_one_job_at_a_time_runs_in_the_workers_thread(server, fname):
    """concurrency=1 runs the function in run()'s thread (no hand-over to a
    pool thread per job), and what it sends still streams as it goes."""
    import threading
    threads, seen_midway = [], []

    def streams(job):
        threads.append(threading.current_thread())
        job.send_data(b"first")
        deadline = time.monotonic() + 10
        while not seen_midway and time.monotonic() < deadline:
            time.sleep(0.01)
        return b"done"
    with worker_thread(server.address, {fname: streams}, [(server, fname)]) as worker, \
            Client(server.address, timeout=10) as client:
        job = client.submit(fname)
        events = job.events()
        assert next(events) == WorkData(b"first")      # before the function returned
        seen_midway.append(True)
        assert job.result() == b"done"
        assert threads[0].name != "MainThread" and "mpgearman-job" not in threads[0].name
        assert worker.concurrency == 1
