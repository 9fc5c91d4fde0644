"""The coordinator loop counts busy and idle workers again at most once a
second, only after a change, and publishes them; the loop runs in this
process over a real segment, driven through its Core and a fake clock."""
import pytest

from mpgearman.config import Config
from mpgearman.coordinator import figures as figures_mod
from mpgearman.coordinator import loop as loop_mod
from mpgearman.coordinator.figures import Figures
from mpgearman.ipc.board import StatusBoard
from mpgearman.ipc.control import Control
from mpgearman.ipc.counters import Counters
from mpgearman.ipc.doorbell import Doorbell
from mpgearman.ipc.shm import Segment
from mpgearman.protocol.packets import T


class Inbox(Doorbell):
    def take(self):
        return []


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def loop(tmp_path, monkeypatch):
    segment = Segment.create(1, 1 << 16)
    board = StatusBoard.create(1, 1024)
    counters = Counters.create(acceptors=1, slots=8)
    bells = [Doorbell(), Doorbell(), Inbox()]
    ours, theirs = Control.pair()
    config = Config(spool_dir=str(tmp_path), job_handle_prefix="H:t")
    lp = loop_mod.CoordinatorLoop(config, segment, board, bells[0], [bells[1]], ours,
                                  bells[2], pid=1, version=b"t")
    lp.figures, lp.counters_view = Figures(counters), counters
    clock = Clock()
    monkeypatch.setattr(loop_mod.time, "monotonic", clock)
    lp.clock = clock
    yield lp
    lp.close()
    for thing in (ours, theirs, *bells, board, segment, counters):
        thing.close()


def shown(loop, name=b"f"):
    f = dict(loop.counters_view.functions())[name]
    return f["busy"], f["idle"]


def test_busy_and_idle_are_recounted_at_most_once_a_second_after_a_change(loop,
                                                                         monkeypatch):
    walks = []
    real = figures_mod.staffing
    monkeypatch.setattr(figures_mod, "staffing", lambda conns: walks.append(1) or real(conns))
    core = loop.core
    core.connect(1, "127.0.0.1", 10)
    core.connect(2, "127.0.0.1", 11)
    core.packet(2, int(T.CAN_DO), (b"f",))
    loop._publish_figures()
    assert shown(loop) == (0, 1) and len(walks) == 1
    loop.clock.now += 0.5
    core.packet(1, int(T.SUBMIT_JOB_BG), (b"f", b"", b"x"))
    core.packet(2, int(T.GRAB_JOB), ())
    loop._publish_figures()                 # too soon after the last count
    assert shown(loop) == (0, 1) and len(walks) == 1
    loop.clock.now += 0.6
    loop._publish_figures()                 # nothing new came, the count was due
    assert shown(loop) == (1, 0) and len(walks) == 2
    loop.clock.now += 5
    loop._publish_figures()                 # nothing changed since: no walk
    assert len(walks) == 2
