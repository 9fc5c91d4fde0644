"""Compaction without a fork: the snapshot of a Core's journaled jobs, plus
the records appended meanwhile, replays to the same jobs in a smaller file."""
import os

from corekit import Harness

from mpgearman.durable import compact, format, replay
from mpgearman.durable.writer import Writer
from mpgearman.protocol.packets import T


def test_snapshot_then_switch_keeps_the_live_jobs_and_the_tail(tmp_path):
    path = str(tmp_path / "journal")
    writer = Writer(path, "second")
    h = Harness()
    c = h.conn()
    w = h.worker(b"f")

    def turn():
        writer.commit(h.core.journal + format.top(h.core.jobs.count))
        h.core.journal.clear()

    handles = [h.submit(c, b"f", b"u%d" % k, b"x" * 50, T.SUBMIT_JOB_BG) for k in range(300)]
    for _ in range(290):                        # most of them end
        handle = h.grab_handle(w)
        h.send(w, T.WORK_COMPLETE, handle, b"")
    running = h.grab_handle(w)                  # one is running at the snapshot
    turn()
    live = h.core.journal_live
    assert live == sum(len(format.submit(j.no, j.handle, b"f", j.unique, 1, 0, j.data))
                       for j in h.core.jobs.jobs.values())
    assert len(h.core.jobs.jobs) == 10
    comp = compact.Compactor(writer, slack=0)
    assert comp.due(live)
    offset = writer.size
    compact.write_snapshot(h.core, comp.new_path)       # what the child does
    later = h.submit(c, b"f", b"", b"after the fork", T.SUBMIT_JOB_BG)
    h.send(w, T.WORK_COMPLETE, running, b"")
    turn()
    before = writer.size
    comp.switch(offset)
    assert writer.size < before / 5
    assert not os.path.exists(comp.new_path)
    turn()                                      # the writer goes on in the new file
    found = replay.read(path)
    expected = [int(x.rsplit(b":", 1)[1]) for x in handles[291:]] + [
        int(later.rsplit(b":", 1)[1])]
    assert list(found.live) == expected
    assert found.top == h.core.jobs.count
    assert not comp.due(h.core.journal_live)


def test_a_running_job_snapshot_counts_its_run():
    h = Harness()
    c = h.conn()
    handle = h.submit(c, b"f", b"", b"x", T.SUBMIT_JOB_BG)
    w = h.worker(b"f")
    assert h.grab_handle(w) == handle
    recs = list(compact.snapshot_records(h.core))
    kinds = [r[format.HEAD.size:format.HEAD.size + 1] for r in recs]
    assert kinds == [format.S, format.R, format.N]
