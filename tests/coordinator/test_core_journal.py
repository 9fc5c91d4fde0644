"""The Core's journal records (durable/format.py) and a Core rebuilt from
them: same handles, priorities, order within a priority, uniques (coalescing
works), run times, attempts; and a turn whose journal could not be written."""
from corekit import Harness, got

from mpgearman.durable import format, replay
from mpgearman.protocol.packets import T


def _replayed(tmp_path, core):
    """A fresh Harness whose Core is rebuilt from `core`'s journal."""
    path = tmp_path / "journal"
    # The loop adds the highest handle number given (foreground ones too).
    path.write_bytes(format.HEADER + bytes(core.journal) + format.top(core.jobs.count))
    found = replay.read(str(path))
    fresh = Harness()
    fresh.core.restore(found.live.values())
    fresh.core.jobs.count = max(fresh.core.jobs.count, found.top)
    return fresh


def test_replay_keeps_handles_priorities_order_uniques_and_attempts(tmp_path):
    h = Harness()
    c = h.conn()
    low = h.submit(c, b"f", b"l1", b"low", T.SUBMIT_JOB_LOW_BG)
    n1 = h.submit(c, b"f", b"u1", b"one", T.SUBMIT_JOB_BG)
    hi = h.submit(c, b"f", b"h1", b"high", T.SUBMIT_JOB_HIGH_BG)
    n2 = h.submit(c, b"f", b"u2", b"two", T.SUBMIT_JOB_BG)
    gone = h.submit(c, b"f", b"u3", b"three", T.SUBMIT_JOB_BG)
    fg = h.submit(c, b"f", b"fg", b"foreground", T.SUBMIT_JOB)
    w = h.worker(b"other")
    h.send(w, T.CAN_DO, b"f")
    assert h.grab_handle(w) == hi                   # running at the "crash"
    h.core.cancel(gone)
    h2 = _replayed(tmp_path, h.core)
    core = h2.core
    assert set(core.jobs.jobs) == {low, n1, hi, n2}     # no foreground, no cancelled job
    assert core.jobs.jobs[hi].retries == 1              # its run counts as an attempt
    c2 = h2.conn()
    # Coalescing still works on a replayed unique; new handles go on above.
    assert h2.submit(c2, b"f", b"u1", b"again", T.SUBMIT_JOB_BG) == n1
    new = h2.submit(c2, b"f", b"", b"new", T.SUBMIT_JOB_BG)
    assert int(new.rsplit(b":", 1)[1]) > int(fg.rsplit(b":", 1)[1])
    (ptype, payload), = got(h2.send(c2, T.GET_STATUS, n2), c2)
    assert payload.split(b"\0")[:2] == [n2, b"1"]
    w2 = h2.worker(b"f")
    order = [h2.grab_handle(w2) for _ in range(5)]
    assert order == [hi, n1, n2, new, low]
    p, payload = h2.grab(w2)
    assert p == T.NO_JOB


def test_replayed_epoch_job_waits_for_its_time(tmp_path):
    h = Harness()
    c = h.conn()
    when = int(h.clock() + 100)
    h.core.packet(c, T.SUBMIT_JOB_EPOCH, (b"f", b"e", str(when).encode(), b"later"))
    (ptype, handle), = got(h.take(), c)
    assert ptype == T.JOB_CREATED
    h2 = _replayed(tmp_path, h.core)
    w = h2.worker(b"f")
    assert h2.grab_handle(w) is None
    h2.clock.advance(101)
    h2.tick()
    assert h2.grab_handle(w) == handle


def test_ended_jobs_leave_the_journal_and_foreground_ones_never_enter(tmp_path):
    h = Harness()
    c = h.conn()
    done = h.submit(c, b"f", b"", b"a", T.SUBMIT_JOB_BG)
    h.submit(c, b"f", b"", b"b", T.SUBMIT_JOB)
    w = h.worker(b"f")
    assert h.grab_handle(w) == done
    h.send(w, T.WORK_COMPLETE, done, b"")
    kinds = [body[:1] for _, body in format.records(h.core.journal, 0)]
    assert kinds == [format.S, format.R, format.E]
    assert _replayed(tmp_path, h.core).core.jobs.jobs == {}


def test_background_submission_onto_a_foreground_job_journals_it(tmp_path):
    h = Harness()
    c = h.conn()
    fg = h.submit(c, b"f", b"same", b"data", T.SUBMIT_JOB)
    assert h.submit(h.conn(), b"f", b"same", b"data", T.SUBMIT_JOB_BG) == fg
    h2 = _replayed(tmp_path, h.core)
    assert list(h2.core.jobs.jobs) == [fg]


def test_a_turn_that_cannot_be_written_acknowledges_nothing(tmp_path):
    h = Harness()
    c = h.conn()
    kept = h.submit(c, b"f", b"", b"old", T.SUBMIT_JOB_BG)
    h.core.journal.clear()                         # written in an earlier turn
    h.core.acks.clear()
    w = h.worker(b"f")
    assert h.grab_handle(w) == kept
    h.core.packet(c, T.SUBMIT_JOB_BG, (b"f", b"u", b"lost"))
    h.core.journal_failed()                       # the write of this turn failed
    (ptype, payload), = got(h.take(), c)
    assert (ptype, payload) == (T.ERROR, b"QUEUE_ERROR\0Job queue could not be written to disk")
    # Only the older job's run is left to write; the refused job is not kept.
    assert [body[:1] for _, body in format.records(h.core.journal, 0)] == [format.R]
    assert h.core.journal_ok is False
    (ptype, _), = got(h.send(c, T.SUBMIT_JOB_BG, b"f", b"", b"x"), c)
    assert ptype == T.ERROR
    assert h.submit(c, b"g", b"", b"fg", T.SUBMIT_JOB)    # foreground goes on
    h.core.journal_ok = True                       # the loop wrote again
    assert h.submit(c, b"f", b"", b"y", T.SUBMIT_JOB_BG)
    h.send(w, T.WORK_COMPLETE, kept, b"")
    w2 = h.worker(b"f")
    assert h.grab_handle(w2) is not None and h.grab_handle(w2) is None


def test_a_spooled_payload_is_kept_while_its_job_lives_and_refused_if_it_cannot_be():
    h = Harness()
    c = h.conn()
    ref = h.spool.new(100_000)
    handle = h.submit(c, b"f", b"", ref, T.SUBMIT_JOB_BG)
    assert h.spool.kept == {ref.name}
    w = h.worker(b"f")
    assert h.grab_handle(w) == handle
    h.send(w, T.WORK_COMPLETE, handle, b"")
    assert h.spool.kept == frozenset()

    def no_room(ref):
        raise OSError(28, "No space left on device")
    h.spool.keep = no_room
    (ptype, payload), = got(h.send(c, T.SUBMIT_JOB_BG, b"f", b"", h.spool.new(100_000)), c)
    assert ptype == T.ERROR and payload.startswith(b"QUEUE_ERROR\0")
    assert h.grab_handle(w) is None       # the refused job is gone (its file too)
    assert h.core.jobs.jobs == {}
