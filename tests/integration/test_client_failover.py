"""Client with several servers: uniques keep to one server, a lost server's
jobs are submitted again elsewhere, and every job ends with one outcome."""
import pytest

from clientlib import worker_thread
from conftest import GEARMAND, HOST
from gearproto import wait_for
from mpgearman import Client
from mpgearman.client import GearmanError, ServerUnavailable
from mpgearman.client.servers import ServerPool


def unique_for(addresses, target, prefix):
    """A unique that the rendezvous choice sends to `target` first."""
    pool = ServerPool(addresses)
    return next(f"{prefix}-{i}" for i in range(1000)
                if pool.candidates(f"{prefix}-{i}")[0] == target)


@pytest.fixture
def two(server_factory, request):
    kind = getattr(request, "param", "mpgearman")
    return server_factory(kind), server_factory(kind)


@pytest.mark.parametrize("two", ["mpgearman", "gearmand"], indirect=True)
def test_same_unique_same_server_and_spread(two, fname):
    addresses = [s.address for s in two]
    with Client(addresses, timeout=10) as c1, Client(list(reversed(addresses)),
                                                     timeout=10) as c2:
        seen = set()
        for i in range(12):
            a = c1.submit(fname, b"x", unique=f"u{i}", background=True)
            b = c2.submit(fname, b"y", unique=f"u{i}", background=True)
            assert a.server == b.server and a.handle == b.handle
            seen.add(a.server)
        assert seen == set(addresses)
        assert {c1.submit(fname, b"z", background=True).server for _ in range(4)} \
            == set(addresses)


@pytest.mark.parametrize("two", ["mpgearman", "gearmand"], indirect=True)
def test_foreground_job_moves_when_its_server_dies(two, fname):
    a, b = two
    addresses = [a.address, b.address]
    unique = unique_for(addresses, a.address, fname)
    with worker_thread(b.address, {fname: lambda job: job.data[::-1]}, [(b, fname)]), \
            Client(addresses, timeout=20) as client:
        job = client.submit(fname, b"abc", unique=unique)
        assert job.server == a.address      # no worker there: it waits
        a.stop()
        assert job.result() == b"cba"
        assert job.server == b.address and job.unique == unique
        # The dead server is skipped while it is down.
        assert client.call(fname, b"xy", unique=unique) == b"yx"


def test_unacknowledged_submission_goes_elsewhere(two, fname):
    a, b = two
    addresses = [a.address, b.address]
    unique = unique_for(addresses, a.address, fname)
    with Client(addresses, timeout=10) as client:
        assert client.echo(server=a.address) == b"ping"   # connected to a ...
        a.stop()                                          # ... which then dies
        job = client.submit(fname, b"x", unique=unique, background=True)
        assert job.server == b.address


def test_lost_server_and_nowhere_to_go_is_server_unavailable(mpgearman_server, fname):
    with Client(mpgearman_server.address, timeout=10, retries=2) as client:
        job = client.submit(fname, b"x")
        mpgearman_server.stop()
        with pytest.raises(ServerUnavailable) as info:
            job.result()
        assert mpgearman_server.address in str(info.value)
        assert "\n" not in str(info.value)
        assert job.done


@pytest.mark.parametrize("server", ["mpgearman", "gearmand"], indirect=True)
def test_idle_connection_to_a_restarted_server_is_replaced(server, spawn):
    """The client holds an idle connection; the server dies and another
    listens on the same port: the very next request works."""
    if GEARMAND is None:
        pytest.skip("gearmand is not installed")
    with Client(server.address, timeout=10) as client:
        assert client.echo(b"one") == b"one"
        server.stop()
        spawn([GEARMAND, "--listen", HOST, "--port", str(server.port), "--log-file", "stderr"])

        def answers():
            try:
                with Client(server.address, connect_timeout=1, timeout=2) as probe:
                    return probe.echo(b"x") == b"x"
            except GearmanError:
                return False
        wait_for(answers, 10, 0.05, "the new server")
        assert client.echo(b"two") == b"two"
        assert client.submit("f", b"x", background=True).server == server.address
