"""setup.py: a C extension that does not build fails the install (with
what to do), unless the pure-Python build is asked for explicitly."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def build_ext(tmp_path, **env):
    """setup.py build_ext with a C compiler that always fails, into tmp_path."""
    env = {**{k: v for k, v in os.environ.items() if k != "MPGEARMAN_PURE_BUILD"},
           "CC": "false", **env}
    argv = [sys.executable, "setup.py", "build_ext", "--build-lib", str(tmp_path / "lib"),
            "--build-temp", str(tmp_path / "tmp")]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_failed_c_build_fails_the_install(tmp_path):
    proc = build_ext(tmp_path)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "building the C extension mpgearman.native._scan failed" in out
    assert "MPGEARMAN_PURE_BUILD=1" in out
    assert not list(tmp_path.rglob("*.so"))


def test_the_pure_build_is_an_explicit_choice(tmp_path):
    proc = build_ext(tmp_path, MPGEARMAN_PURE_BUILD="1")
    assert proc.returncode == 0, proc.stderr
    assert "installing without the C extensions" in proc.stdout
    assert not list(tmp_path.rglob("*.so"))
