"""Building a C extension with AddressSanitizer and UBSan, and running a
child Python on it: shared by the sanitized tests of every package.

The sources come from setup.py's Extension of the same name, so a sanitized
build never drifts from the real one."""
import ast
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def sources(module: str) -> list[str]:
    """The source files setup.py lists for the extension `module`
    (e.g. "mpgearman.native._core"), as paths."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Extension"
                and ast.literal_eval(node.args[0]) == module):
            return [str(REPO / s) for s in ast.literal_eval(node.args[1])]
    raise LookupError(f"setup.py has no extension {module}")


def _runtime(name: str) -> str | None:
    try:
        path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True,
                              text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return path if os.path.isabs(path) and os.path.exists(path) else None


def build(module: str, tmp_path: Path) -> tuple[Path, str]:
    """(the sanitized extension built into tmp_path, the libasan to preload);
    skips the test when gcc has no AddressSanitizer."""
    asan = _runtime("libasan.so")
    if asan is None:
        pytest.skip("gcc with AddressSanitizer is not available")
    out = tmp_path / (module.rsplit(".", 1)[1] + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = ["gcc", "-shared", "-fPIC", "-O1", "-g", "-std=c11", "-D_GNU_SOURCE",
           "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
           "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined",
           f"-I{sysconfig.get_paths()['include']}", "-o", str(out), *sources(module)]
    made = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    return out, asan


def run_clean(code: str, args: list, asan: str, cwd: Path, timeout: float,
              done: str, **env) -> None:
    """Run `code` in a child Python with libasan preloaded; it must print
    `done` and no sanitizer may report anything."""
    environ = dict(os.environ, LD_PRELOAD=asan,
                   ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1", **env)
    environ.pop("MPGEARMAN_PURE", None)
    run = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                         text=True, timeout=timeout, env=environ, cwd=cwd)
    report = run.stdout + run.stderr
    assert run.returncode == 0 and done in run.stdout, report[-4000:]
    assert "AddressSanitizer" not in report and "runtime error" not in report, report[-4000:]
