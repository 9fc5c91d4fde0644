"""The Python examples of README.md run as written against a real server, so
they cannot rot.

Every ```python block of README.md starts with a `# NAME.py` line. Blocks
named `*worker.py` are started first (in the background) and waited for
until the server lists their functions; the others run to completion, and
when the README shows their output (a ```text block after "`python NAME.py`
prints:") stdout must be exactly that. The only change made to the code is
the address: 127.0.0.1:4730 becomes the test server's.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from clientproc import env, wait_registered
from conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
ADDRESS = "127.0.0.1:4730"
BLOCK_RE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
PRINTS_RE = re.compile(r"`python (\S+\.py)` prints:\s*$")
FUNCTION_RE = re.compile(r"""@worker\.function\(\s*["']([^"']+)["']""")


def examples() -> dict[str, dict]:
    """name -> {"code": ..., "output": expected stdout or None}, in README order."""
    text = README.read_text("utf-8")
    found: dict[str, dict] = {}
    for match in BLOCK_RE.finditer(text):
        lang, body = match.group(1), match.group(2)
        if lang == "python":
            first = body.splitlines()[0]
            name = re.match(r"#\s*(\S+\.py)\b", first)
            assert name, f"README python block without a `# NAME.py` first line: {first!r}"
            assert name.group(1) not in found, f"two README blocks named {name.group(1)}"
            found[name.group(1)] = {"code": body, "output": None}
        elif lang == "text":
            before = text[:match.start()].rstrip().splitlines()[-1]
            prints = PRINTS_RE.search(before)
            if prints:
                assert prints.group(1) in found, f"output shown for unknown {prints.group(1)}"
                found[prints.group(1)]["output"] = body
    return found


def groups() -> list[list[str]]:
    """The examples split into runs: each worker with the clients after it
    up to the next worker."""
    runs: list[list[str]] = []
    for name in examples():
        if name.endswith("worker.py") or not runs:
            runs.append([])
        runs[-1].append(name)
    return runs


def test_readme_has_the_promised_examples():
    found = examples()
    assert {"worker.py", "client.py", "async_worker.py", "async_client.py",
            "wordcount_worker.py", "wordcount_client.py", "json_worker.py",
            "json_client.py"} <= set(found)
    assert all(found[n]["output"] for n in found if not n.endswith("worker.py"))
    for name in found:
        assert ADDRESS in found[name]["code"], f"{name} does not name {ADDRESS}"


@pytest.mark.parametrize("names", groups(), ids=lambda names: names[0])
def test_readme_example_runs_as_written(server, spawn, tmp_path, names):
    found = examples()
    for name in names:
        code = found[name]["code"].replace(ADDRESS, server.address)
        (tmp_path / name).write_text(code, "utf-8")
    for name in names:
        if name.endswith("worker.py"):
            proc = spawn([sys.executable, tmp_path / name], env=env())
            wait_registered(proc, [server], FUNCTION_RE.findall(found[name]["code"]))
            continue
        done = subprocess.run([sys.executable, name], cwd=tmp_path, env=env(),
                              capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout.decode() == found[name]["output"]
