"""listeners.reserve: the supervisor's hold on the port refuses a second
server on it, even one that starts while the first has no listening
socket yet, and lets the first server's own acceptors in."""
import socket

import pytest

from mpgearman import listeners
from mpgearman.listeners import PortInUse

HOST = "127.0.0.1"


def _close(socks):
    for s in socks:
        s.close()


def test_a_port_another_program_listens_on_is_refused():
    with socket.socket() as other:
        other.bind((HOST, 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} is already in use on {HOST}"):
            listeners.reserve(HOST, port)


def test_a_port_another_mpgearman_serves_is_refused():
    held, port = listeners.reserve(HOST, 0)
    acceptors = listeners.open_listeners(HOST, port)   # what the acceptors bind
    try:
        with pytest.raises(PortInUse):
            listeners.reserve(HOST, port)
    finally:
        _close(held + acceptors)


def test_a_second_server_starting_before_the_first_listens_is_refused():
    held, port = listeners.reserve(HOST, 0)     # the first: not listening yet
    try:
        with pytest.raises(PortInUse):
            listeners.reserve(HOST, port)
    finally:
        _close(held)


def test_the_port_is_free_again_once_the_server_is_gone():
    held, port = listeners.reserve(HOST, 0)
    acceptors = listeners.open_listeners(HOST, port)
    _close(held + acceptors)
    again, same = listeners.reserve(HOST, port)
    _close(again)
    assert same == port
