"""The number `workers` shows for a connection (gearmand's fd column) is
unique within the server: the acceptor's descriptor times the number of
acceptor slots (twice the acceptors), plus the acceptor's slot."""
import psutil

from conftest import _connections
from gearproto import PacketType as T
from gearproto import wait_for


def _server_side(srv, conn):
    """(acceptor slot, descriptor) holding the server end of `conn`."""
    pid = srv.acceptor_of(conn)
    proc = psutil.Process(pid)
    port = conn.sock.getsockname()[1]
    fds = [c.fd for c in _connections(proc) if c.raddr and c.raddr.port == port]
    assert len(fds) == 1, fds
    return int(proc.name().rsplit("-", 1)[1]), fds[0]


def test_workers_numbers_are_unique_across_acceptors(mpgearman_server, unique_name):
    srv = mpgearman_server                  # two acceptors: four slots
    conns, seen = [], {}
    try:
        for _ in range(64):                 # until both acceptors hold some
            c = srv.connect()
            name = unique_name("id").encode()
            c.send_packet(T.SET_CLIENT_ID, name)
            conns.append((c, name))
            slot, fd = _server_side(srv, c)
            seen.setdefault(slot, []).append(fd)
            if len(seen) == 2 and min(map(len, seen.values())) >= 3:
                break
        assert len(seen) == 2, seen
        want = {name: fd * 4 + slot for c, name in conns for slot, fd in [_server_side(srv, c)]}

        def listing():
            shown = {}
            for line in srv.admin("workers").splitlines()[:-1]:
                number, _peer, client_id = line.split(b" ")[:3]
                shown[client_id] = int(number)
            return shown if set(want) <= set(shown) else None
        shown = wait_for(listing, 10, message="every connection in `workers`")
        numbers = list(shown.values())
        assert len(numbers) == len(set(numbers)), numbers
        assert {name: shown[name] for name in want} == want
    finally:
        for c, _ in conns:
            c.close()
