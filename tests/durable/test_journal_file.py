"""The journal file: records and header, a torn tail, a bad record in the
middle (with and without --recover), a failed write, and --durability none."""
import errno
import logging
import os

import pytest

from mpgearman.config import Config
from mpgearman.coordinator.spoolref import SpoolRef
from mpgearman.durable import format, replay, store
from mpgearman.durable.writer import Writer


def _journal(path, *records):
    w = Writer(str(path), "always")
    assert w.commit(b"".join(records))
    w.close()


def _sub(no, data=b"payload", unique=b"u"):
    return format.submit(no, b"H:t:%d" % no, b"fn", unique, 1, 0, data)


def test_records_round_trip_and_the_header_is_checked(tmp_path):
    path = tmp_path / "journal"
    spooled = format.submit(3, b"H:t:3", b"fn", b"", 0, 1700000000, SpoolRef("a0.1.2", 1 << 20))
    _journal(path, _sub(1), _sub(2), format.run(2), format.end(1), spooled, format.top(9))
    assert path.read_bytes()[:len(format.HEADER)] == format.HEADER
    found = replay.read(str(path))
    assert list(found.live) == [2, 3] and found.top == 9
    two, three = found.live[2], found.live[3]
    assert (two.handle, two.fname, two.unique, two.data, two.runs) == (
        b"H:t:2", b"fn", b"u", b"payload", 1)
    assert (three.spooled, three.data, three.size, three.when, three.prio) == (
        1, b"a0.1.2", 1 << 20, 1700000000, 0)
    assert three.encode() == spooled
    path.write_bytes(b"NOTOURS!" + path.read_bytes()[8:])
    with pytest.raises(replay.JournalDamaged, match="bad magic"):
        replay.read(str(path))


@pytest.mark.parametrize("cut", [3, 10, 30])
def test_a_torn_record_at_the_end_is_cut_off_with_a_log_line(tmp_path, caplog, cut):
    path = tmp_path / "journal"
    _journal(path, _sub(1), _sub(2))
    whole = path.stat().st_size
    last = len(_sub(2))
    with open(path, "r+b") as f:
        f.truncate(whole - last + cut)          # a crash in the middle of its write()
    with caplog.at_level(logging.WARNING):
        found = replay.read(str(path))
    assert list(found.live) == [1]
    assert path.stat().st_size == whole - last    # cut back to the last whole record
    assert f"offset {whole - last}" in caplog.text and "cut off" in caplog.text


def test_zeros_at_the_end_are_a_torn_write(tmp_path):
    path = tmp_path / "journal"
    _journal(path, _sub(1))
    with open(path, "ab") as f:
        f.write(bytes(100))
    assert list(replay.read(str(path)).live) == [1]


def _damage_middle(path) -> int:
    _journal(path, _sub(1), _sub(2), _sub(3))
    offset = len(format.HEADER) + len(_sub(1))
    raw = bytearray(path.read_bytes())
    raw[offset + 20] ^= 0xFF                    # inside the second record's body
    path.write_bytes(bytes(raw))
    return offset


def test_a_bad_record_in_the_middle_stops_the_start_naming_file_and_offset(tmp_path):
    path = tmp_path / "journal"
    offset = _damage_middle(path)
    before = path.read_bytes()
    with pytest.raises(replay.JournalDamaged) as exc:
        replay.read(str(path))
    assert str(path) in str(exc.value) and f"offset {offset}" in str(exc.value)
    assert "--recover" in str(exc.value)
    assert path.read_bytes() == before           # left as it was


def test_recover_keeps_a_copy_and_serves_what_comes_before(tmp_path):
    path = tmp_path / "journal"
    offset = _damage_middle(path)
    before = path.read_bytes()
    found = replay.read(str(path), recover=True)
    assert list(found.live) == [1]
    copies = [p for p in tmp_path.iterdir() if p.name.startswith("journal.damaged-")]
    assert len(copies) == 1 and copies[0].read_bytes() == before
    assert path.stat().st_size == offset


def test_a_failed_write_leaves_the_file_whole_and_the_next_one_works(tmp_path, monkeypatch):
    path = tmp_path / "journal"
    w = Writer(str(path), "second")
    assert w.commit(_sub(1))
    size = path.stat().st_size
    real = os.write

    def half_then_full(fd, data):
        if fd == w.fd:
            monkeypatch.setattr(os, "write", full)
            return real(fd, bytes(data)[:7])     # part of the record, then no room
        return real(fd, data)

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    assert not w.commit(_sub(2))
    assert path.stat().st_size == size and w.size == size
    monkeypatch.setattr(os, "write", real)
    assert w.commit(_sub(3))
    w.close()
    assert list(replay.read(str(path)).live) == [1, 3]


def test_second_syncs_within_a_second_always_at_once(tmp_path):
    now = [100.0]
    w = Writer(str(tmp_path / "a"), "second", clock=lambda: now[0])
    assert w.commit(_sub(1)) and w.unsynced
    assert w.tick() == pytest.approx(1.0)
    now[0] += 1.0
    assert w.tick() is None and not w.unsynced
    a = Writer(str(tmp_path / "b"), "always")
    assert a.commit(_sub(1)) and not a.unsynced


class _Core:
    def __init__(self):
        self.journal = bytearray()
        self.restored = []
        self.jobs = type("J", (), {"count": 0})()

    def restore(self, subs):
        self.restored += [sub.no for sub in subs]


def test_durability_none_makes_no_file(tmp_path):
    core = _Core()
    config = Config(data_dir=str(tmp_path / "data"), durability="none")
    assert store.open_journal(config, core) is None
    assert core.journal is None
    assert not (tmp_path / "data").exists()


def test_open_journal_replays_then_appends(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _journal(data / "journal", _sub(4), format.top(7))
    core = _Core()
    w = store.open_journal(Config(data_dir=str(data)), core)
    assert core.restored == [4] and core.jobs.count == 7
    assert w.commit(format.end(4))
    w.close()
    assert replay.read(str(data / "journal")).live == {}


def test_a_data_dir_is_locked(tmp_path):
    fd = store.prepare(str(tmp_path / "d"))
    try:
        with pytest.raises(store.DataDirBusy):
            store.prepare(str(tmp_path / "d"))
    finally:
        os.close(fd)
