"""The library is typed (py.typed): mypy --strict passes on it, with the
configuration in pyproject.toml, and a user's program is checked against
its annotations (a wrong argument type is an error, not Any)."""
from pathlib import Path

import pytest
from mypy import api

REPO = Path(__file__).resolve().parents[2]

USER_PROGRAM = '''
import asyncio
from mpgearman import AsyncClient, Client, Worker
from mpgearman.client import JobFailed, WorkerJob


def reverse(job: WorkerJob) -> bytes:
    return job.data[::-1]


def main() -> None:
    with Worker("127.0.0.1:4730", concurrency=2) as worker:
        worker.register("reverse", reverse, timeout=5)
    with Client("127.0.0.1:4730", timeout=10, cancel_on_timeout=True) as client:
        job = client.submit("reverse", b"abc", priority="high")
        handle: str | None = job.handle
        print(handle, job.cancel(), client.call("f", json={"a": 1}, timeout=1.5))
        try:
            job.result(timeout=1)
        except JobFailed as exc:
            print(exc.reason)


async def amain() -> None:
    async with AsyncClient("127.0.0.1:4730") as client:
        job = await client.submit("reverse", "abc")
        print(await job.cancel(), await client.call("reverse", b"x", timeout=2))
'''


@pytest.fixture(autouse=True)
def this_checkout(monkeypatch):
    """Check this tree's package, whatever the working directory and
    whichever copy is installed."""
    monkeypatch.setenv("MYPYPATH", str(REPO))


def mypy(tmp_path, *args):
    out, err, status = api.run(["--config-file", str(REPO / "pyproject.toml"),
                                "--cache-dir", str(tmp_path / "cache"), *args])
    return status, out + err


def test_the_library_passes_mypy_strict(tmp_path):
    status, output = mypy(tmp_path, str(REPO / "mpgearman" / "__init__.py"),
                          str(REPO / "mpgearman" / "client"))
    assert status == 0, output
    assert (REPO / "mpgearman" / "py.typed").exists()


@pytest.mark.parametrize("mistake, complaint", [
    ("", None),
    ('client.call("f", timeout="soon")', 'Argument "timeout" to "call" of "Client"'),
    ('Worker(concurrency="2")', 'Argument "concurrency" to "Worker"'),
    ('job.cancel(timeout=[1])', 'Argument "timeout" to "cancel" of "Job"'),
])
def test_a_users_program_is_checked_against_the_api(tmp_path, mistake, complaint):
    program = USER_PROGRAM
    if mistake:
        program += f"\n\ndef wrong(client: Client, job: Job) -> None:\n    {mistake}\n"
        program = program.replace("from mpgearman.client import JobFailed, WorkerJob",
                                  "from mpgearman.client import Job, JobFailed, WorkerJob")
    source = tmp_path / "user_program.py"
    source.write_text(program)
    status, output = mypy(tmp_path, "--strict", str(source))
    if complaint is None:
        assert status == 0, output
    else:
        assert status == 1 and complaint in output, output
