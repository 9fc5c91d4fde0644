"""Rings between real processes: a forked producer and a forked consumer
share a Segment and a Doorbell, the way the supervisor's children do.

Every child is bounded (alarm) and the parent kills what outlives its
deadline, so nothing hangs under `pytest -n auto`.  Nothing here has a
name outside the process tree: the segment is a memfd, the bell an eventfd.
"""
import json
import os
import random
import select
import signal
import time

import pytest

from mpgearman.ipc.doorbell import Doorbell
from mpgearman.ipc.shm import Segment
from mpgearman.native import ring_py

try:
    from mpgearman.native import _ring
except ImportError:
    if os.environ.get("MPGEARMAN_REQUIRE_NATIVE") == "1":
        raise
    _ring = None

needs_c = pytest.mark.skipif(_ring is None, reason="C extension not built")
IMPLS = {"c": _ring, "py": ring_py}

RECORDS = 200_000
RING_SIZE = 1 << 16
DEADLINE = 60.0          # seconds for a whole run, generous for a busy CI box
WAIT = 2.0                # one doorbell wait; a lost wake-up would show here
BLOB = random.Random(1).randbytes(1 << 15)


def record_sizes(count, seed):
    """Mostly small records, some large, up to the ring's limit."""
    rng, limit = random.Random(seed), RING_SIZE // 4
    sizes = []
    for _ in range(count):
        kind = rng.random()
        high = 64 if kind < 0.7 else 1024 if kind < 0.95 else limit
        sizes.append(rng.randrange(8, high + 1))
    return sizes


SIZES = record_sizes(RECORDS, seed=2)


def make_record(seq, size):
    start = seq % 4096
    return seq.to_bytes(8, "little") + BLOB[start:start + size - 8]


def wait_readable(bell, timeout):
    return bool(select.select([bell], [], [], timeout)[0])


def consume(ring, bell, expected):
    """Pop everything, in order; block on the bell when idle."""
    seq = wakeups = lost = 0
    while seq < expected:
        batch = ring.pop_batch(256)
        for rec in batch:
            got = int.from_bytes(rec[:8], "little")
            if got != seq or rec != make_record(seq, SIZES[seq]):
                return {"error": f"record {seq}: got seq {got}, {len(rec)} bytes"}
            seq += 1
        if batch or not ring.reader_idle():
            continue
        if not wait_readable(bell, WAIT) and ring.used():
            lost += 1                  # slept with data and no ring
        bell.drain()
        ring.reader_awake()
        wakeups += 1
    return {"received": seq, "wakeups": wakeups, "lost": lost}


def produce(ring, bell, count, seed):
    """Push with push and push_many in random chunks; ring only when told."""
    rng = random.Random(seed)
    seq = rings = full = 0
    while seq < count:
        chunk = min(rng.randrange(1, 33), count - seq)
        items = [make_record(s, SIZES[s]) for s in range(seq, seq + chunk)]
        pushed = ring.push_many(items) if chunk > 1 else int(ring.push(items[0]))
        seq += pushed
        if pushed and ring.writer_should_ring():
            bell.ring()
            rings += 1
        if pushed < chunk:
            full += 1
            time.sleep(0)              # let the consumer run on a busy box
    return {"sent": seq, "rings": rings, "full": full}


def fork_child(fn, *args):
    """Run fn(*args) in a child; its dict result comes back over a pipe."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(rfd)
            signal.alarm(int(DEADLINE) + 5)
            result = fn(*args)
            os.write(wfd, json.dumps(result).encode())
            status = 0
        except BaseException as exc:  # noqa: BLE001 - report, never return
            os.write(wfd, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(status)
    os.close(wfd)
    return pid, rfd


def collect(children, deadline):
    """Wait for every (pid, fd); kill the ones still running at deadline."""
    results = []
    for pid, rfd in children:
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([rfd], [], [], left)[0]:
                break
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(rfd)
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        results.append(json.loads(b"".join(chunks) or b'{"error": "timeout"}'))
    return results


def run_stream(producer_impl, consumer_impl, count=RECORDS):
    seg = Segment.create(1, RING_SIZE).check()
    with seg, Doorbell() as bell:
        children = [
            fork_child(consume, seg.inbound(0, IMPLS[consumer_impl]), bell, count),
            fork_child(produce, seg.inbound(0, IMPLS[producer_impl]), bell, count, 3),
        ]
        started = time.monotonic()
        got, sent = collect(children, started + DEADLINE)
        elapsed = time.monotonic() - started
        assert "error" not in got, got
        assert "error" not in sent, sent
        assert seg.inbound(0).used() == 0
    return got, sent, elapsed


@pytest.mark.parametrize("producer, consumer", [
    pytest.param("c", "c", marks=needs_c), ("py", "py"),
    pytest.param("c", "py", marks=needs_c),
    pytest.param("py", "c", marks=needs_c)])
def test_stream_arrives_complete_and_in_order(producer, consumer):
    count = RECORDS if producer == consumer else RECORDS // 4
    got, sent, _ = run_stream(producer, consumer, count)
    assert got["received"] == sent["sent"] == count
    assert got["lost"] == 0
    # The bell is rung only for a reader that announced sleep.
    assert sent["rings"] < count // 10


def ping_pong(send, send_bell, recv, recv_bell, rounds, serve):
    """One side of a request/answer exchange; both sides block every round.
    The client sends n and waits for n back; the server echoes."""
    for n in range(rounds):
        if not serve:
            assert send.push(n.to_bytes(8, "little"))
            if send.writer_should_ring():
                send_bell.ring()
        while not (batch := recv.pop_batch(1)):
            if recv.reader_idle():
                if not wait_readable(recv_bell, WAIT) and recv.used():
                    return {"error": f"lost wake-up in round {n}"}
                recv_bell.drain()
                recv.reader_awake()
        if int.from_bytes(batch[0], "little") != n:
            return {"error": f"round {n}: got {batch[0]!r}"}
        if serve:
            assert send.push(batch[0])
            if send.writer_should_ring():
                send_bell.ring()
    return {"rounds": rounds}


@pytest.mark.parametrize("impl", [pytest.param("c", marks=needs_c), "py"])
def test_ping_pong_never_loses_a_wakeup(impl):
    rounds = 20_000
    seg = Segment.create(1, 4096).check()
    impl = IMPLS[impl]
    inbound, outbound = seg.inbound(0, impl), seg.outbound(0, impl)
    with seg, Doorbell() as to_coordinator, Doorbell() as to_acceptor:
        children = [
            fork_child(ping_pong, outbound, to_acceptor, inbound,
                       to_coordinator, rounds, True),     # coordinator
            fork_child(ping_pong, inbound, to_coordinator, outbound,
                       to_acceptor, rounds, False),       # acceptor
        ]
        results = collect(children, time.monotonic() + DEADLINE)
    assert results == [{"rounds": rounds}] * 2
