"""setup.py: a C extension that does not build fails the install (with
what to do), unless the pure-Python build is asked for explicitly; and the
README's install commands (the first command, the systemd install) work as
written with the system's Python."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


# -- the README's install commands, followed as written --------------------------

SYSTEM_PYTHON = Path("/usr/bin/python3")
READY = re.compile(r"^mpgearman listening on (\S+):(\d+)$", re.M)
INSTALL_TIMEOUT = 300      # a venv, a pip install with a C build, a start


def _readme_block(after: str) -> list[str]:
    """The command lines of the first ```sh block after the heading `after`."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"^```sh\n(.*?)^```", text.split(after, 1)[1], re.M | re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def _system_python_with_venv():
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no system Python at /usr/bin/python3")
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c",
                            "import sys, venv, ensurepip; assert sys.version_info >= (3, 10)"],
                           capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("the system Python lacks venv/ensurepip (python3-venv) or is too old")


def _source_copy(tmp_path) -> Path:
    """The source tree without build products, where pip may write."""
    dst = tmp_path / "src"
    shutil.copytree(REPO, dst, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", "*.so", ".pytest_cache", "node_modules"))
    return dst


def _clean_env(home: Path, **extra) -> dict:
    """This environment without what points at the checkout or a venv, the
    system's directories first on PATH (so `python3` is the system's), and
    the server on a free loopback port through `serve`'s environment options."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
           and not k.startswith("MPGEARMAN_")}
    env.update(HOME=str(home), PATH="/usr/bin:/bin", MPGEARMAN_SERVE_PORT="0",
               MPGEARMAN_SERVE_LISTEN="127.0.0.1", MPGEARMAN_SERVE_ACCEPTORS="1", **extra)
    return env


def _wait_ready(proc) -> tuple:
    deadline = time.monotonic() + INSTALL_TIMEOUT
    while time.monotonic() < deadline:
        found = READY.search(proc.out_path.read_text("utf-8", "replace"))
        if found:
            return found.group(1), int(found.group(2))
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    pytest.fail(f"no ready line (exit {proc.poll()}):\n"
                f"{proc.err_path.read_text('utf-8', 'replace')[-4000:]}")


def _answers(host, port) -> str:
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"version\n")
        return s.recv(100).decode()


def _stops(proc) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.err_path.read_text("utf-8", "replace")[-2000:]


def test_the_first_command_runs_as_written_on_the_system_python(tmp_path, spawn):
    """README "Two commands": the venv line, with the system's python3 and
    a fresh HOME, installs, and the server it starts answers."""
    _system_python_with_venv()
    line, = _readme_block("## Two commands")
    assert line.startswith("python3 -m venv ~/.local/mpgearman && "), line
    home = tmp_path / "home"
    home.mkdir()
    proc = spawn(["bash", "-c", line], cwd=_source_copy(tmp_path), env=_clean_env(home))
    host, port = _wait_ready(proc)
    assert _answers(host, port).startswith("OK ")
    venv = home / ".local" / "mpgearman"
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import sys, mpgearman.native as n; "
                            "print(n.IMPLEMENTATION, n.__file__, sys._base_executable)"],
                           capture_output=True, text=True, timeout=60, env=_clean_env(home),
                           cwd=home)
    implementation, module, base = where.stdout.split()
    assert implementation == "c" and module.startswith(str(venv)), where.stdout
    assert Path(base).resolve() == SYSTEM_PYTHON.resolve()
    _stops(proc)


def test_the_systemd_install_path_as_far_as_it_goes_without_systemd(tmp_path, spawn):
    """README "Running under systemd", under a temporary root: the venv in
    /opt/mpgearman, the config and the units installed, `systemctl enable`
    offline (--root), and the unit's ExecStart starts a server that answers.
    Only `daemon-reload` and `--now` need a running systemd."""
    _system_python_with_venv()
    root = tmp_path / "root"
    lines = _readme_block("## Running under systemd")
    assert lines[3:] == ["systemctl daemon-reload", "systemctl enable --now mpgearman"], lines

    def rooted(text: str) -> str:
        return text.replace("/opt/", f"{root}/opt/").replace("/etc/", f"{root}/etc/")

    (root / "etc" / "systemd" / "system").mkdir(parents=True)    # there on a real host
    env = _clean_env(tmp_path)
    src = _source_copy(tmp_path)
    for line in lines[:3]:
        run = subprocess.run(["bash", "-c", rooted(line)], cwd=src, env=env,
                             capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        assert run.returncode == 0, (line, run.stderr[-4000:])
    if shutil.which("systemctl"):
        run = subprocess.run(["systemctl", f"--root={root}", "enable", "mpgearman"],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        wants = root / "etc/systemd/system/multi-user.target.wants/mpgearman.service"
        assert os.readlink(wants) == "/etc/systemd/system/mpgearman.service"
    unit = (root / "etc/systemd/system/mpgearman.service").read_text()
    exec_start = re.search(r"(?m)^ExecStart=(.*)$", unit).group(1)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    proc = spawn(rooted(exec_start).split(), env=dict(env, CACHE_DIRECTORY=str(cache)))
    host, port = _wait_ready(proc)
    assert _answers(host, port).startswith("OK ")
    assert (cache / "spool").is_dir()
    _stops(proc)
