"""The acceptor's request clock (deadlines.py) and its share of
--max-connections, without sockets or processes."""
import pytest

from mpgearman.acceptor.deadlines import PROGRESS, Deadlines
from mpgearman.acceptor.loop import share


class Conn:
    due = 0.0
    got = 0


def test_a_request_must_finish_within_the_limit_of_its_first_byte():
    d, c = Deadlines(10), Conn()
    d.after_read(c, 100.0, 1, finished=False)      # first byte of a header
    assert c.due == 110.0 and d.expired(109.9, ()) == []
    for t in range(101, 110):                      # a byte a second is no progress
        d.after_read(c, float(t), 1, finished=False)
    assert d.expired(110.0, ()) == [c]


def test_enough_bytes_of_a_body_earn_more_time():
    d, c = Deadlines(10), Conn()
    d.after_read(c, 0.0, 100, finished=False)
    d.after_read(c, 9.0, PROGRESS - 1, finished=False)
    assert c.due == 10.0
    d.after_read(c, 9.5, 1, finished=False)
    assert c.due == 19.5 and c.got == 0


def test_a_read_that_finished_a_request_restarts_the_clock():
    d, c = Deadlines(10), Conn()
    d.after_read(c, 0.0, 5, finished=False)
    d.after_read(c, 8.0, 30, finished=True)        # the rest, and the next one's start
    assert c.due == 18.0


def test_between_requests_nothing_is_timed():
    d, c = Deadlines(10), Conn()
    d.after_read(c, 0.0, 5, finished=False)
    d.done(c)
    assert c.due == 0.0 and d.open == set() and d.expired(1e9, ()) == []


def test_paused_connections_are_spared_and_restart_afresh():
    d, c = Deadlines(10), Conn()
    d.after_read(c, 0.0, 5, finished=False)
    assert d.expired(50.0, {c}) == []
    d.restart([c], 50.0)
    assert c.due == 60.0


def test_zero_means_never():
    d, c = Deadlines(0), Conn()
    d.after_read(c, 0.0, 5, finished=False)
    assert c.due == 0.0 and d.open == set()


@pytest.mark.parametrize("total,n", [(100_000, 2), (10, 3), (7, 7), (5, 1), (1, 4)])
def test_connection_shares(total, n):
    parts = [share(total, n, i) for i in range(n)]
    assert min(parts) >= 1
    assert sum(parts) == max(total, n)
    assert max(parts) - min(parts) <= 1
    # a reload's fresh set (slots n..2n-1) takes the same shares
    assert [share(total, n, n + i) for i in range(n)] == parts


def test_no_limit():
    assert share(0, 4, 2) == 0
