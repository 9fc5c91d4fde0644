"""servers.py: address parsing, rendezvous choice, backoff."""
import pytest

from mpgearman.client.errors import GearmanError
from mpgearman.client.servers import (BACKOFF_MAX, ServerPool, parse_servers,
                                      split_address)


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:4730", ["127.0.0.1:4730"]),
    ("localhost", ["localhost:4730"]),
    ("a:1, b:2,a:1", ["a:1", "b:2"]),
    ("[::1]:4731", ["[::1]:4731"]),
    ("[::1]", ["[::1]:4730"]),
    (["h1", "h2:5"], ["h1:4730", "h2:5"]),
])
def test_parse(text, expected):
    assert parse_servers(text) == expected


@pytest.mark.parametrize("bad", ["", "h:", "h:x", "h:70000", "::1", "[::1", "[::1]x",
                                 ",", 5, [None]])
def test_parse_errors_are_one_line(bad):
    with pytest.raises(GearmanError) as info:
        parse_servers(bad)
    assert "\n" not in str(info.value)


def test_split_v6():
    assert split_address("[fe80::1]:99") == ("fe80::1", 99)


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def test_rendezvous_is_stable_and_spreads():
    pool = ServerPool("a:1,b:1,c:1")
    firsts = {pool.candidates(f"u{i}")[0] for i in range(60)}
    assert firsts == {"a:1", "b:1", "c:1"}
    for i in range(20):
        assert pool.candidates(f"u{i}")[0] == ServerPool("c:1,a:1,b:1").candidates(f"u{i}")[0]


def test_down_server_is_skipped_then_used_again():
    clock = Clock()
    pool = ServerPool("a:1,b:1,c:1", clock=clock)
    unique = next(f"u{i}" for i in range(100) if pool.candidates(f"u{i}")[0] == "a:1")
    pool.mark_down("a:1", "refused")
    order = pool.candidates(unique)
    assert order[0] != "a:1" and order[-1] == "a:1"
    clock.now += 0.2
    assert pool.candidates(unique)[0] == "a:1"


def test_backoff_doubles_to_a_cap():
    clock = Clock()
    pool = ServerPool("a:1", clock=clock)
    waits = []
    for _ in range(10):
        pool.mark_down("a:1", "x")
        waits.append(pool.states["a:1"].down_until - clock.now)
    assert waits[:3] == pytest.approx([0.1, 0.2, 0.4])
    assert waits[-1] == BACKOFF_MAX
    pool.mark_up("a:1")
    pool.mark_down("a:1", "x")
    assert pool.states["a:1"].down_until - clock.now == pytest.approx(0.1)


def test_rotation_without_unique():
    pool = ServerPool("a:1,b:1")
    assert {pool.candidates()[0] for _ in range(4)} == {"a:1", "b:1"}


def test_failure_message_names_servers_and_errors():
    pool = ServerPool("a:1,b:2")
    pool.mark_down("a:1", "Connection refused")
    text = pool.describe_failure()
    assert "a:1 (Connection refused)" in text and "b:2" in text
