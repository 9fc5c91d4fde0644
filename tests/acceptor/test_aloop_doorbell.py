"""The C acceptor loop takes its doorbell edge-triggered: every ring wakes
it, and it never spends a read on the eventfd's counter."""
from looptwins import Harness


def test_rings_wake_the_c_loop_without_a_read(tmp_path):
    h = Harness("c", str(tmp_path))
    try:
        for _ in range(3):
            h.bell.ring()
            h.turns(0.01)
        assert h.bell.drain() == 3
    finally:
        h.shutdown()
