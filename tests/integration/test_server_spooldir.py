"""A shared --spool-dir (mode 1777) where another user planted port-N: the
server refuses to start, says why, and touches nothing the link points to.
(The checks themselves are unit-tested in tests/test_spool_dir.py.)"""
import os
import subprocess
import sys

from conftest import HOST, REPO_ROOT, free_port


def test_a_planted_port_symlink_stops_the_start_and_deletes_nothing(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "data").write_bytes(b"keep me")
    port = free_port()
    (shared / f"port-{port}").symlink_to(victim)
    proc = subprocess.run([sys.executable, "-m", "mpgearman", "serve", "--listen", HOST,
                           "--port", str(port), "--acceptors", "1",
                           "--spool-dir", str(shared)],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == 1, proc.stderr
    assert "cannot start" in proc.stderr and f"port-{port} is not a directory" in proc.stderr
    assert os.listdir(victim) == ["data"]
    assert (victim / "data").read_bytes() == b"keep me"
