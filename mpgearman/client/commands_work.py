"""`mpgearman work FUNCTION -- COMMAND...`: a worker that runs a command per job.

Owns the mapping between a job and a child process: the payload is copied
to the command's stdin, its stdout (collected in a temporary file, so a big
result never sits in memory) becomes the result, and a non-zero exit fails
the job. It must not speak the protocol or handle signals itself: `Worker`
does both (SIGTERM finishes the jobs in hand, then `run()` returns).
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from typing import IO, TYPE_CHECKING

import click

if TYPE_CHECKING:
    from .workerjob import WorkerJob

from .commands import EXIT_OK, EXIT_USAGE, die, one_line

COPY_CHUNK = 1 << 16
# A result this small is returned as bytes; a bigger one is streamed from its file.
INLINE_RESULT = 1 << 20
STDERR_TAIL = 4096


class CommandError(Exception):
    """COMMAND exited non-zero after writing to stderr; the message is the
    last line it wrote, which the worker sends as WORK_EXCEPTION."""


def run_worker(function: str, command: list[str], servers: list[str], *,
               concurrency: int, timeout: int | None) -> int:
    if shutil.which(command[0]) is None:
        die(f"command not found: {command[0]}", EXIT_USAGE)
    from .. import Worker
    from . import GearmanError
    try:
        worker = Worker(servers, concurrency=concurrency)
    except GearmanError as exc:
        raise click.BadParameter(one_line(exc), param_hint="'-s' / '--server'")
    worker.register(function, lambda job: run_command(command, job), timeout=timeout)
    show_library_warnings()
    warn_unreachable(servers)
    worker.run()
    return EXIT_OK


class _LineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"mpgearman: {record.levelname.lower()}: {one_line(record.getMessage())}"


def show_library_warnings() -> None:
    """A long-running worker should say when it loses a server (the library
    logs it, silently unless someone listens)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    # A command that failed is the job's outcome, reported to its client.
    handler.addFilter(lambda record: not (
        record.exc_info and isinstance(record.exc_info[1], CommandError)))
    logger = logging.getLogger("mpgearman.client")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)


def warn_unreachable(servers: list[str]) -> None:
    """The worker retries unreachable servers quietly for ever (they may
    start later); say once, at start, which ones it is waiting for."""
    from .. import Client
    from . import GearmanError
    with Client(servers, connect_timeout=2.0, timeout=5.0) as client:
        for server in servers:
            try:
                client.echo(server=server)
            except GearmanError as exc:
                click.echo(f"mpgearman: warning: {one_line(exc)}; "
                           "the worker keeps trying", err=True)


def run_command(command: list[str], job: WorkerJob) -> bytes | IO[bytes]:
    """Run `command` for one job; return its stdout, or raise WorkFailed /
    CommandError when it exits non-zero."""
    from .. import WorkFailed
    out = tempfile.TemporaryFile()
    handed_over = False
    try:
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=out, stderr=err)
            feed(proc, job)
            status = wait(proc, command[0], job)
            if status != 0:
                last = last_line(err)
                if last:
                    raise CommandError(last)
                raise WorkFailed(describe_status(command[0], status))
        # The child shared our file offset and left it at the end.
        out.seek(0)
        if os.fstat(out.fileno()).st_size <= INLINE_RESULT:
            return out.read()
        # The worker streams the file and closes it once sent.
        handed_over = True
        return out
    finally:
        if not handed_over:
            out.close()


def wait(proc: subprocess.Popen[bytes], name: str, job: WorkerJob) -> int:
    """The command's exit status. At the job's timeout (--timeout) the server
    takes the job back, so the command is killed rather than left to run
    on for nothing."""
    try:
        return proc.wait(job.time_left())
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        job.stopped = True
        from .. import WorkFailed
        raise WorkFailed(f"{name} was killed at the {job.timeout:g} s timeout") from None


def feed(proc: subprocess.Popen[bytes], job: WorkerJob) -> None:
    """Copy the payload to the command's stdin, then close it. A command that
    stops reading early (`true`, `head -1`) is not an error."""
    assert proc.stdin is not None       # started with stdin=PIPE
    try:
        with job.open() as payload:
            shutil.copyfileobj(payload, proc.stdin, COPY_CHUNK)
    except BrokenPipeError:
        pass
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass


def last_line(err: IO[bytes]) -> str:
    """The last non-blank line of what the command wrote to stderr."""
    size = err.seek(0, 2)
    err.seek(max(0, size - STDERR_TAIL))
    for line in reversed(err.read().splitlines()):
        if line.strip():
            return str(line.decode("utf-8", "replace").strip())
    return ""


def describe_status(name: str, status: int) -> str:
    if status < 0:
        return f"{name} was killed by signal {-status}"
    return f"{name} exited with status {status}"
