"""The C core behind the coordinator's interface (coordinator/ccore.py):
what the differential test's few connections and functions do not reach."""
import pytest

from corekit import FakeClock, FakeSpool, frames
from mpgearman.config import Config
from mpgearman.coordinator.actions import Send
from mpgearman.protocol.packets import T

pytest.importorskip("mpgearman.native._core")
from mpgearman.coordinator.ccore import CCore  # noqa: E402


def make(**options) -> CCore:
    options.setdefault("job_handle_prefix", "H:c")
    return CCore(Config(**options), FakeSpool(), clock=FakeClock(), pid=1, version=b"v")


def test_many_connections_are_each_found_again():
    """Connection records move when their pool grows: each must still be
    found by its id afterwards."""
    core = make()
    ids = [1000 + i for i in range(300)]
    for conn in ids:
        core.connect(conn, "127.0.0.1", conn)
    for conn in ids:
        core.packet(conn, int(T.ECHO_REQ), (b"%d" % conn,))
    answered = [(a.conn, frames(a.data)) for a in core.out if type(a) is Send]
    assert answered == [(conn, [(T.ECHO_RES, b"%d" % conn)]) for conn in ids]
    assert core.counts() == (300, 0, 0)
