"""The C core under AddressSanitizer and UBSan: _core built with
-fsanitize=address,undefined into a temporary directory, loaded in a child
Python (libasan preloaded) as mpgearman.native._core, and driven by the
differential test (differential.py: every packet type, spooled payloads,
unusable spool files, every admin command, against the Python Core) and
the coordinator loop tests. Any report fails the test.

MPGEARMAN_SANITIZED_TESTS=all runs all of tests/coordinator in the child
instead (minutes, not seconds)."""
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
import importlib.util, sys
spec = importlib.util.spec_from_file_location("mpgearman.native._core", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
from mpgearman import native
assert native.core is module and native.CORE == "c", native.CORE
import pytest
code = pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                    "-k", "not sanitized", *sys.argv[2:]])
print("sanitized run done", code)
sys.exit(code)
"""


def _runtime(name: str) -> str | None:
    try:
        path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True,
                              text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return path if os.path.isabs(path) and os.path.exists(path) else None


def test_c_core_is_clean_under_asan_and_ubsan(tmp_path):
    asan = _runtime("libasan.so")
    if asan is None:
        pytest.skip("gcc with AddressSanitizer is not available")
    module = tmp_path / ("_core" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = ["gcc", "-shared", "-fPIC", "-O1", "-g", "-std=c11", "-D_GNU_SOURCE",
           "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
           "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined",
           f"-I{sysconfig.get_paths()['include']}", "-o", str(module),
           *(str(NATIVE / s) for s in SOURCES)]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    env = dict(os.environ, LD_PRELOAD=asan, PYTHONPATH=f"{REPO}{os.pathsep}{HERE}",
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1", MPGEARMAN_CORE="c")
    env.pop("MPGEARMAN_PURE", None)
    if os.environ.get("MPGEARMAN_SANITIZED_TESTS") == "all":
        tests, timeout = [str(HERE)], 1800
    else:
        tests, timeout = [str(HERE / "test_core_differential.py"),
                          str(HERE / "test_loop_contain.py"),
                          str(HERE / "test_loop_figures.py")], 300
    run = subprocess.run([sys.executable, "-c", CHILD, str(module), *tests],
                         capture_output=True, text=True, timeout=timeout, env=env,
                         cwd=tmp_path)
    report = run.stdout + run.stderr
    assert run.returncode == 0 and "sanitized run done 0" in run.stdout, report[-4000:]
    assert "AddressSanitizer" not in report and "runtime error" not in report, report[-4000:]
