"""The rings served in C (native.serve/route/publish through NativeRings)
against the loop's Python path: the same inbound records, or the same Core
output, give the same outbound records, in the same order."""
import logging

import pytest

from mpgearman.coordinator.actions import Close, Send, SendSpooled
from mpgearman.coordinator.spoolref import SpoolRef
from mpgearman.ipc import messages
from mpgearman.protocol.encoder import encode
from mpgearman.protocol.packets import T
from ringtwins import Twin, packet

A, B, C = (messages.conn_id(0, 0, n) for n in (1, 2, 3))


@pytest.fixture
def pair(tmp_path):
    made = []

    def make(**kw):
        twins = (Twin(tmp_path / "py", False, **kw), Twin(tmp_path / "c", True, **kw))
        made.extend(twins)
        return twins
    (tmp_path / "py").mkdir()
    (tmp_path / "c").mkdir()
    yield make
    for twin in made:
        twin.close()


def both(twins, records, i=0) -> list:
    outs = []
    for twin in twins:
        twin.feed(i, records)
        twin.turn()
        outs.append(twin.taken(i))
    assert outs[0] == outs[1]
    return outs[1]


def kinds(recs):
    return [messages.parse(rec)[:2] for rec in recs]


def hello(*conns):
    return [messages.connect(c, n, "127.0.0.1") for n, c in enumerate(conns)]


def test_a_job_life_gives_the_same_records(pair):
    twins = pair()
    both(twins, hello(A, B, C))
    out = both(twins, [packet(B, T.CAN_DO, b"f"), packet(B, T.PRE_SLEEP),
                       packet(A, T.SUBMIT_JOB, b"f", b"u", b"data"),
                       packet(C, T.SUBMIT_JOB_BG, b"f", b"", b"bg"),
                       packet(A, T.ECHO_REQ, b"echo")])
    # A's JOB_CREATED and ECHO_RES merged into one record, B's NOOP in its own
    assert kinds(out) == [(messages.SEND, B), (messages.SEND, A), (messages.SEND, C)]
    assert messages.parse(out[1])[2].count(b"\0RES") == 2
    out = both(twins, [packet(B, T.GRAB_JOB_UNIQ), packet(B, T.GRAB_JOB)])
    handle = b"H:t:1"
    out = both(twins, [packet(B, T.WORK_DATA, handle, b"part"),
                       packet(B, T.WORK_COMPLETE, handle, b"all\0of it"),
                       messages.relay(B, b"relayed", False), messages.closed(C)])
    assert kinds(out) == [(messages.SEND, A), (messages.SEND, B)]
    assert messages.parse(out[0])[2].endswith(b"H:t:1\0all\0of it")


def test_malformed_packets_cost_only_their_connection(pair, caplog):
    twins = pair()
    both(twins, hello(A, B))
    with caplog.at_level(logging.ERROR):
        out = both(twins, [packet(B, T.ECHO_REQ, b"1"),
                           packet(A, T.SUBMIT_JOB, b"no separators"),
                           packet(A, T.ECHO_REQ, b"A is gone"),
                           packet(B, T.ECHO_REQ, b"2")])
    assert f"the last of type 7 from connection {A:#x}" in caplog.text
    assert kinds(out) == [(messages.SEND, B), (messages.SEND, A), (messages.CLOSE, A)]
    assert messages.parse(out[1])[2] == encode(T.ERROR, b"SERVER_ERROR",
                                               b"Internal server error")
    both(twins, hello(C))
    for bad in (0, 43, 999):
        out = both(twins, [messages.packet(C, bad, b"x"), packet(B, T.ECHO_REQ, b"3")])
        assert kinds(out)[-1] == (messages.SEND, B)
        both(twins, hello(C))


def test_output_merges_pieces_closes_and_records(pair):
    twins = pair()
    ref = SpoolRef("spool-1", 5000)
    actions = [Send(A, b"a" * 400), Send(B, b"b" * 10), Send(A, b"A" * 400),
               Send(A, b"x" * 400),                       # over merge_limit: new record
               Send(B, b"big" * 7000),                    # pieces
               Send(B, b"after"), Close(B), Send(B, b"late"),
               SendSpooled(C, b"head", ref), Send(C, b"tail"), Send(A, b""),
               Send(C, b"c" * 996), Send(C, b"d" * 24)]          # exactly merge_limit
    outs = []
    for twin in twins:
        twin.loop.core.out.extend(actions)
        twin.turn()
        outs.append(twin.taken())
    assert outs[0] == outs[1]
    assert kinds(outs[1])[:4] == [(messages.SEND, A), (messages.SEND, B),
                                  (messages.SEND, A), (messages.SEND, B)]
    assert sum(1 for k, c in kinds(outs[1]) if c == B) >= 5
    assert messages.parse(outs[1][-1])[2] == b"tail" + b"c" * 996 + b"d" * 24


def test_a_full_ring_keeps_records_pending_in_order(pair):
    twins = pair(ring=1 << 14)
    actions = [Send(messages.conn_id(0, 0, n % 7), bytes([n % 250]) * 900)
               for n in range(100)]
    outs = []
    for twin in twins:
        twin.loop.core.out.extend(actions)
        twin.turn()
        got = twin.taken()
        assert twin.loop._timeout() == 0.001       # records wait for room
        for _ in range(50):
            twin.turn()
            got += twin.taken()
        outs.append(got)
    assert outs[0] == outs[1]
    assert sum(len(messages.parse(r)[2]) for r in outs[1]) == 900 * 100


def test_a_dead_generation_is_dropped_and_its_spool_released(pair):
    twins = pair(pairs=2)
    ref = SpoolRef("spool-2", 10)
    new = messages.conn_id(0, 1, 9)
    outs = []
    for twin in twins:
        twin.feed(0, hello(A))
        twin.turn()
        twin.loop.core.out.append(Send(A, b"never sent"))
        twin.loop.acceptor_lost(0)
        twin.loop.attach(0)
        twin.loop.core.out.extend([SendSpooled(A, b"h", ref), Send(A, b"old"),
                                   Send(new, b"new"), Send(messages.conn_id(1, 0, 1), b"1")])
        twin.turn()
        outs.append((twin.taken(0), twin.taken(1), twin.released))
    assert outs[0] == outs[1]
    assert kinds(outs[1][0]) == [(messages.SEND, new)]
    assert outs[1][2] == [ref]


def test_the_doorbell_wakes_the_loop_on_every_ring_without_a_read(pair):
    loop = pair()[1].loop
    seen = []
    for _ in range(3):
        loop.bell.ring()
        seen.append([fd for fd, _ in loop.ep.poll(0)])
        seen.append([fd for fd, _ in loop.ep.poll(0)])     # reported once per ring
    assert seen == [[loop.bell.fileno()], []] * 3
    assert loop.bell.drain() == 3          # nobody read the counter


def test_a_turn_of_packets_never_turns_output_into_python_objects(pair):
    py, c = pair()
    both((py, c), hello(A, B))
    taken = []
    c.loop.core._take = lambda: taken.append(1)        # the Python side's drain

    def stop():
        c.loop.running = False
    c.feed(0, [packet(B, T.CAN_DO, b"f"), packet(A, T.SUBMIT_JOB_BG, b"f", b"", b"x"),
               packet(A, T.ECHO_REQ, b"e")])
    c.loop.bell.ring()
    c.loop.running = True
    c.loop.run(heartbeat=stop)
    assert taken == [] and c.loop.core.out == []
    assert kinds(c.taken()) == [(messages.SEND, A)]


def test_spooled_payloads_leave_as_the_same_sendfile_records(pair, tmp_path):
    twins = pair()
    for twin, sub in zip(twins, ("py", "c")):
        (tmp_path / sub / "a0.1").write_bytes(b"z" * 5000)
        (tmp_path / sub / "a0.2").write_bytes(b"y" * 6000)
    both(twins, hello(A, B, C))
    both(twins, [messages.spooled(A, T.SUBMIT_JOB, (b"f", b"u"), "a0.1", 5000),
                 messages.spooled(C, T.SUBMIT_JOB_BG, (b"f", b""), "a0.2", 6000)])
    out = both(twins, [packet(B, T.CAN_DO, b"f"), packet(B, T.GRAB_JOB_UNIQ),
                       packet(B, T.GRAB_JOB)])
    sendfiles = [messages.parse(r) for r in out if r[0] == messages.SENDFILE]
    assert [(f[1], f[4]) for f in sendfiles] == [(B, 5000), (B, 6000)]
    outs = []
    for twin in twins:         # a spooled answer to a dead acceptor's worker
        twin.loop.acceptor_lost(0)
        outs.append(twin.released)
    assert outs[0] == outs[1]


def test_a_spooled_answer_then_a_python_record_keeps_the_sendfile(pair, tmp_path):
    """A spooled WORK_COMPLETE then its worker's CLOSED in one turn: the
    client's SENDFILE queued for the first must not come out of the second
    record's handling as a CLOSE of the client."""
    twins = pair()
    for sub in ("py", "c"):
        (tmp_path / sub / "a0.3").write_bytes(b"q" * 7000)
        (tmp_path / sub / "a0.4").write_bytes(b"r" * 8000)
    both(twins, hello(A, B))
    both(twins, [packet(B, T.CAN_DO, b"f"),
                 messages.spooled(A, T.SUBMIT_JOB, (b"f", b"u"), "a0.3", 7000)])
    both(twins, [packet(B, T.GRAB_JOB)])
    out = both(twins, [messages.spooled(B, T.WORK_COMPLETE, (b"H:t:1",), "a0.4", 8000),
                       messages.closed(B)])
    assert kinds(out) == [(messages.SENDFILE, A)]
    assert messages.parse(out[0])[4] == 8000


def test_the_c_core_serves_the_rings_unless_told_python(monkeypatch, tmp_path):
    from mpgearman.coordinator.core import Core
    from mpgearman.coordinator.native_rings import native_of
    twin = Twin(tmp_path, False)
    try:
        core = twin.loop.core
        monkeypatch.delenv("MPGEARMAN_CORE_RINGS", raising=False)
        assert native_of(core) is core.c
        monkeypatch.setenv("MPGEARMAN_CORE_RINGS", "python")
        assert native_of(core) is None
        monkeypatch.setenv("MPGEARMAN_CORE_RINGS", "c")
        assert native_of(core) is core.c
        assert native_of(Core(core.config, twin.loop.spool)) is None
    finally:
        twin.close()
