"""The C core with its rings served in C, under AddressSanitizer and UBSan:
built with -fsanitize=address,undefined into a temporary directory and
driven through the twin tests (test_loop_native_twins.py) plus hostile
PACKET records (random types, bodies and NUL placement), in a child Python
with libasan preloaded. Any report fails the test."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NATIVE = REPO / "mpgearman" / "native"
SOURCES = ["core.c", "core_ops.c", "core_handlers.c", "core_table.c", "core_spool.c",
           "core_rows.c", "core_rings.c", "core_rings_py.c", "core_journal.c"]

CHILD = r"""
import importlib.util, pathlib, random, sys, tempfile
spec = importlib.util.spec_from_file_location("mpgearman.native._core", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
import mpgearman.native
mpgearman.native._core = module
sys.path.insert(0, sys.argv[2])
import pytest
assert pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                    sys.argv[2] + "/test_loop_native_twins.py"]) == 0
from ringtwins import Twin
from mpgearman.ipc import messages
rng = random.Random(7)
twin = Twin(pathlib.Path(tempfile.mkdtemp()), True, ring=1 << 14)
conns = [messages.conn_id(0, 0, n) for n in range(1, 6)]
for rnd in range(60):
    recs = [messages.connect(c, n, "x") for n, c in enumerate(conns)]
    for _ in range(20):
        body = bytes(rng.choice(b"\0ab") for _ in range(rng.randrange(40)))
        recs.append(messages.packet(rng.choice(conns), rng.randrange(-5, 50) & 0xFFFF, body))
    twin.feed(0, recs)
    twin.turn()
    twin.taken()
twin.close()
print("sanitized run done")
"""


def _runtime(name: str) -> str | None:
    try:
        path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True,
                              text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return path if os.path.isabs(path) and os.path.exists(path) else None


def test_rings_served_in_c_are_clean_under_asan_and_ubsan(tmp_path):
    asan = _runtime("libasan.so")
    if asan is None:
        pytest.skip("gcc with AddressSanitizer is not available")
    module = tmp_path / ("_core" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = ["gcc", "-shared", "-fPIC", "-O1", "-g", "-std=c11",
           "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
           "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined",
           f"-I{sysconfig.get_paths()['include']}", "-o", str(module),
           *(str(NATIVE / s) for s in SOURCES)]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stderr
    env = dict(os.environ, LD_PRELOAD=asan, PYTHONPATH=str(REPO),
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    run = subprocess.run([sys.executable, "-c", CHILD, str(module), str(HERE)],
                         capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    report = run.stdout + run.stderr
    assert run.returncode == 0 and "sanitized run done" in run.stdout, report[-4000:]
    assert "AddressSanitizer" not in report and "runtime error" not in report, report[-4000:]
