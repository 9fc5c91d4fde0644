"""The C event loop under AddressSanitizer and UBSan: built with
-fsanitize=address,undefined into a temporary directory and driven through
every twin conversation (test_aloop_twins.py) plus hostile input, in a
child Python with libasan preloaded. Any report fails the test."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NATIVE = REPO / "mpgearman" / "native"
SOURCES = ["aloop.c", "atable.c", "arecords.c", "aaccept.c", "aconn_in.c", "aconn_out.c", "astatus.c", "aloop_py.c"]

CHILD = r"""
import importlib.util, os, pathlib, random, sys, tempfile
spec = importlib.util.spec_from_file_location("mpgearman.native._aloop", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
sys.path.insert(0, sys.argv[2])
import test_aloop_twins as t
rng = random.Random(9)
hostile = [("send", 0, bytes(rng.randrange(256) for _ in range(n))) for n in (1, 12, 700)]
hostile += [("send", 0, t.req(7, b"fn\0" * 3000)), ("send", 0, t.HDR.pack(b"\0REQ", 7, 1 << 31))]
cases = list(t.CONVERSATIONS.values()) + [hostile[:1], hostile[1:2], hostile[2:3], hostile[3:]]
for steps in cases:
    t.play("c", steps, pathlib.Path(tempfile.mkdtemp()))
print("sanitized run done")
"""


def _runtime(name: str) -> str | None:
    try:
        path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True,
                              text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return path if os.path.isabs(path) and os.path.exists(path) else None


def test_c_loop_is_clean_under_asan_and_ubsan(tmp_path):
    asan = _runtime("libasan.so")
    if asan is None:
        pytest.skip("gcc with AddressSanitizer is not available")
    module = tmp_path / ("_aloop" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = ["gcc", "-shared", "-fPIC", "-O1", "-g", "-std=c11", "-D_GNU_SOURCE",
           "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
           "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined",
           f"-I{sysconfig.get_paths()['include']}", "-o", str(module),
           *(str(NATIVE / s) for s in SOURCES)]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    env = dict(os.environ, LD_PRELOAD=asan, PYTHONPATH=str(REPO),
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    run = subprocess.run([sys.executable, "-c", CHILD, str(module), str(HERE)],
                         capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    report = run.stdout + run.stderr
    assert run.returncode == 0 and "sanitized run done" in run.stdout, report[-4000:]
    assert "AddressSanitizer" not in report and "runtime error" not in report, report[-4000:]
