"""The spool directory under a shared --spool-dir: port-N is created without
following a link, must belong to the server's user and be writable by
nobody else, the lock file is never followed, and cleaning removes only
the files the server names itself."""
import os

import pytest

from mpgearman.acceptor import spool
from mpgearman.acceptor.spool import UnsafeSpoolDir

OTHER_UID = 65534       # nobody

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@pytest.fixture
def shared(tmp_path):
    """A spool base shared like /tmp (mode 1777)."""
    base = tmp_path / "shared"
    base.mkdir()
    base.chmod(0o1777)
    return base


@pytest.fixture
def victim(tmp_path):
    """A directory of ours another user would like the server to write to and clean."""
    d = tmp_path / "precious"
    d.mkdir()
    (d / "data").write_bytes(b"keep me")
    return d


def test_prepare_makes_a_private_locked_directory(shared):
    path, fd = spool.prepare(str(shared), 4730)
    try:
        assert path == str(shared / "port-4730")
        st = os.lstat(path)
        assert st.st_uid == os.geteuid() and st.st_mode & 0o777 == 0o700
        with pytest.raises(OSError, match="already serves port 4730"):
            spool.lock(path, 4730)
    finally:
        os.close(fd)


def test_a_planted_symlink_port_directory_is_refused_and_its_target_untouched(shared, victim):
    (shared / "port-4730").symlink_to(victim)
    with pytest.raises(UnsafeSpoolDir, match="not a directory"):
        spool.prepare(str(shared), 4730)
    assert os.listdir(victim) == ["data"]
    assert (victim / "data").read_bytes() == b"keep me"


@needs_root
def test_a_port_directory_of_another_user_is_refused(shared):
    planted = shared / "port-4730"
    planted.mkdir(mode=0o700)
    os.chown(planted, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeSpoolDir, match=f"belongs to uid {OTHER_UID}"):
        spool.prepare(str(shared), 4730)


def test_a_port_directory_others_may_write_is_refused(shared):
    planted = shared / "port-4730"
    planted.mkdir()
    planted.chmod(0o777)
    with pytest.raises(UnsafeSpoolDir, match="writable by other users"):
        spool.prepare(str(shared), 4730)


def test_a_base_others_may_write_without_the_sticky_bit_is_refused(tmp_path):
    base = tmp_path / "open"
    base.mkdir()
    base.chmod(0o777)
    with pytest.raises(UnsafeSpoolDir, match="without the sticky bit"):
        spool.prepare(str(base), 4730)


@needs_root
def test_a_base_of_another_user_is_refused(tmp_path):
    base = tmp_path / "theirs"
    base.mkdir(mode=0o755)
    os.chown(base, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeSpoolDir, match=f"belongs to uid {OTHER_UID}"):
        spool.prepare(str(base), 4730)


def test_a_planted_lock_symlink_is_not_followed(tmp_path, victim):
    own = tmp_path / "port-4730"
    own.mkdir(mode=0o700)
    (own / "lock").symlink_to(victim / "created-by-the-server")
    with pytest.raises(UnsafeSpoolDir, match="symbolic link"):
        spool.lock(str(own), 4730)
    assert os.listdir(victim) == ["data"]


def test_a_lock_that_is_a_hard_link_is_refused(tmp_path, victim):
    own = tmp_path / "port-4730"
    own.mkdir(mode=0o700)
    os.link(victim / "data", own / "lock")
    with pytest.raises(UnsafeSpoolDir, match="regular file"):
        spool.lock(str(own), 4730)


def test_clean_removes_only_what_the_server_names(tmp_path, victim):
    own = tmp_path / "port-4730"
    own.mkdir(mode=0o700)
    ours = ["a0.123.1", "a1.456.22.part", "c.7"]
    theirs = ["lock", "notes.txt", "a0.x.1", "c.7.bak", "port-1", "b.1"]
    for name in ours + theirs:
        (own / name).write_bytes(b"x")
    (own / "c.9").symlink_to(victim / "data")      # a link by a server name: not a file
    (own / "c.8").mkdir()
    spool.clean(str(own))
    assert sorted(os.listdir(own)) == sorted(theirs + ["c.8", "c.9"])
    assert (victim / "data").read_bytes() == b"keep me"


def test_clean_of_one_dead_acceptor_removes_its_partial_files_only(tmp_path):
    own = tmp_path / "port-4730"
    own.mkdir(mode=0o700)
    names = ["a0.123.1", "a0.123.2.part", "a0.1234.3.part", "a1.123.4.part", "c.1"]
    for name in names:
        (own / name).write_bytes(b"x")
    spool.clean(str(own), only_parts_of="a0.123")
    assert sorted(os.listdir(own)) == sorted(set(names) - {"a0.123.2.part"})


def test_prepare_removes_what_an_earlier_run_left(shared):
    own = shared / "port-4730"
    own.mkdir(mode=0o700)
    (own / "a0.99.1").write_bytes(b"old payload")
    (own / "c.3").write_bytes(b"old payload")
    (own / "README").write_bytes(b"an operator's note")
    path, fd = spool.prepare(str(shared), 4730)
    os.close(fd)
    assert sorted(os.listdir(path)) == ["README", "lock"]
