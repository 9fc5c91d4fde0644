"""Third-party client libraries driven through small scripts: where they
are installed, how to start a library's worker and client scripts, and how
to read a client's JSON answer. Shared by the Python and Node.js compat
tests (and the tests that mix them)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gearproto import wait_for

CLIENTS = Path(__file__).parent / "clients"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mpgearman-tests"
NODE_MODULES = Path(os.environ.get("MPGEARMAN_NODE_MODULES") or CACHE / "node" / "node_modules")
PYLIBS = Path(os.environ.get("MPGEARMAN_PYLIBS") or CACHE / "pylibs")
TIMEOUT = 40


class ScriptLib:
    """One library: the argv of its worker and client scripts and their env.
    `last` is the function its worker registers last (registration done)."""

    def __init__(self, name: str, env: dict, worker: list, client: list, last: str,
                 cwd: Path | None = None):
        self.name, self.env, self.last, self.cwd = name, env, last, cwd
        self.worker_argv, self.client_argv = worker, client

    def worker(self, server, spawn, prefix: str, *extra):
        proc = spawn([*self.worker_argv, server.host, server.port, prefix, *extra],
                     env=self.env)
        try:
            server.wait_workers(f"{prefix}_{self.last}")
        except AssertionError:
            raise AssertionError(f"{self.name} worker did not register:\n"
                                 f"{proc.err_path.read_text()}") from None
        return proc

    def client_cmd(self, server, mode: str, func: str, *args) -> list[str]:
        return [*self.client_argv, server.host, str(server.port), mode, func, *map(str, args)]

    def client(self, server, mode: str, func: str, *args, check: bool = True,
               timeout: float = TIMEOUT):
        """Run a client to completion; its JSON answer (or, with
        check=False, the CompletedProcess)."""
        proc = subprocess.run(self.client_cmd(server, mode, func, *args), env=self.env,
                              capture_output=True, timeout=timeout, cwd=self.cwd)
        if not check:
            return proc
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def py_lib(name: str, worker: list, client: list, last: str) -> ScriptLib:
    """A Python library installed by tests/run in a directory of its own."""
    path = PYLIBS / name
    if not any(path.glob("*.dist-info")):
        pytest.skip(f"{name} is not installed in {path} (bash tests/run installs it)")
    env = {**os.environ, "PYTHONPATH": str(path), "PYTHONUNBUFFERED": "1"}
    return ScriptLib(name, env, worker, client, last, cwd=CLIENTS / "pylibs")


def node_lib(package: str, script: str, last: str) -> ScriptLib:
    """An npm package installed by tests/run under NODE_MODULES."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (NODE_MODULES / package / "package.json").is_file():
        pytest.skip(f"npm package {package} is not installed in {NODE_MODULES} "
                    "(bash tests/run installs it)")
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    node_dir = CLIENTS / "node"
    return ScriptLib(package, env, [node, node_dir / f"{script}_worker.js"],
                     [node, str(node_dir / f"{script}_client.js")], last)


def spawned_json(proc, timeout: float = TIMEOUT) -> dict:
    """Wait for a client started with `spawn` and parse its JSON line."""
    rc = proc.wait(timeout)
    assert rc == 0, proc.err_path.read_text()
    return json.loads(proc.out_path.read_text().strip().splitlines()[-1])


def wait_queued(server, func: str, count: int, proc) -> None:
    """Wait until `count` jobs of `func` are queued (the submitting client
    `proc` must still be alive)."""
    wait_for(lambda: proc.poll() is not None or
             server.status().get(func, (0,))[0] >= count,
             15, 0.02, f"{count} queued {func} jobs")
    assert proc.poll() is None, proc.err_path.read_text()


