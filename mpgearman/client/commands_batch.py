"""`mpgearman submit --batch`: one job per input line, results in input order.

Owns the batch loop (a window of jobs in flight, refilled as the oldest one
finishes, so memory stays bounded whatever the input's length), the progress
display on stderr and the summary line. It must not parse arguments or
speak the protocol: `commands.submit` hands it a connected `Client`.

Output contract: stdout gets exactly one line per input line, in input
order: the result, the job handle with --background, or an empty line for a
job that failed (its error goes to stderr as `mpgearman: error: line N: ...`).
"""
from __future__ import annotations

import collections
import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .jobs import Event
    from .sync import Client, Job

from .commands import (EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_UNREACHABLE,
                       describe, exit_code, result_to, show_event)

# When several kinds of failure happen, the exit status names the gravest.
SEVERITY = {EXIT_OK: 0, EXIT_FAILED: 1, EXIT_TIMEOUT: 2, EXIT_UNREACHABLE: 3}
COUNT_CHUNK = 1 << 20


def run_batch(client: Client, function: str, source: str, options: dict[str, Any], *,
              timeout: float | None, concurrency: int, interval: float) -> int:
    """Run the batch read from `source` (a path or "-"); return the exit status."""
    total = None if source == "-" else count_lines(source)
    stream = sys.stdin.buffer if source == "-" else open(source, "rb")
    progress = Progress(total, interval)
    batch = Batch(client, function, options, timeout, progress)
    with contextlib.ExitStack() as stack:
        if stream is not sys.stdin.buffer:
            stack.enter_context(stream)
        stack.callback(progress.close)
        batch.run(lines(stream), concurrency)
    return batch.status


def lines(stream: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a binary stream without their line feed, read lazily."""
    for line in stream:
        yield line[:-1] if line.endswith(b"\n") else line


def count_lines(path: str) -> int | None:
    """Lines in a regular file (a last line without a line feed counts), for
    the progress bar's total; None for pipes and devices."""
    count, last = 0, b"\n"
    try:
        with open(path, "rb") as f:
            if not hasattr(f, "seekable") or not f.seekable():
                return None
            while chunk := f.read(COUNT_CHUNK):
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError:
        return None
    return count + (last != b"\n")


class Batch:
    """The window of jobs in flight and the tally of how they ended."""

    def __init__(self, client: Client, function: str, options: dict[str, Any],
                 timeout: float | None, progress: Progress) -> None:
        self.client, self.function, self.options = client, function, options
        self.timeout = timeout
        self.progress = progress
        self.out = sys.stdout.buffer
        self.status = EXIT_OK

    def run(self, source: Iterable[bytes], concurrency: int) -> None:
        window: collections.deque[tuple[int, Job, float]] = collections.deque()
        for number, line in enumerate(source, 1):
            started = time.monotonic()
            try:
                job = self.client.submit(self.function, line, **self.options)
            except Exception as exc:
                if not self._is_library_error(exc):
                    raise
                self._settle(window)
                self._fail(number, exc)
                if exit_code(exc) == EXIT_UNREACHABLE:
                    # Nothing more can be submitted; say so once and stop.
                    self.progress.note("stopped: no server accepts jobs")
                    return
                continue
            window.append((number, job, started))
            if self.options["background"] or len(window) >= concurrency:
                self._finish(*window.popleft())
        self._settle(window)

    @staticmethod
    def _is_library_error(exc: BaseException) -> bool:
        from . import GearmanError
        return isinstance(exc, GearmanError)

    def _settle(self, window: collections.deque[tuple[int, Job, float]]) -> None:
        while window:
            self._finish(*window.popleft())

    def _finish(self, number: int, job: Job, started: float) -> None:
        if self.options["background"]:
            self.out.write(f"{job.handle}\n".encode())
            self._flush_if_interactive()
            self.progress.step(ok=True)
            return
        try:
            result_to(job, self.out, self.function, self.timeout, started,
                      lambda event: self._event(number, event))
        except Exception as exc:
            if not self._is_library_error(exc):
                raise
            self.out.write(b"\n")
            self._fail(number, exc, written=True)
            return
        self.out.write(b"\n")
        self._flush_if_interactive()
        self.progress.step(ok=True)

    def _event(self, number: int, event: Event) -> None:
        if self.progress.bar is not None:
            click.echo("", err=True)        # leave the bar's line
        show_event(event, f"line {number}: ")

    def _fail(self, number: int, exc: BaseException, written: bool = False) -> None:
        if not written:
            self.out.write(b"\n")
        self.out.flush()
        self.progress.note(f"line {number}: {describe(exc)}", error=True)
        self.progress.step(ok=False)
        code = exit_code(exc)
        if SEVERITY[code] > SEVERITY[self.status]:
            self.status = code

    def _flush_if_interactive(self) -> None:
        # A terminal or a pipe to a waiting reader should see results as they
        # come; a file gets them in big writes.
        if not self.out.seekable():
            self.out.flush()


class Progress:
    """Progress on stderr: click's bar on a terminal, else a line every
    `interval` seconds; always a summary line at the end."""

    def __init__(self, total: int | None, interval: float):
        self.total, self.interval = total, interval
        self.succeeded = self.failed = 0
        self.started = self.last = time.monotonic()
        self.bar = None
        if sys.stderr.isatty():
            # A generator has no length hint, so an unknown total shows counts only.
            items = (None for _ in ()) if total is None else None
            self.bar = click.progressbar(items, length=total, file=sys.stderr,
                                         label="jobs", show_pos=True)
            self.bar.__enter__()

    def step(self, ok: bool) -> None:
        if ok:
            self.succeeded += 1
        else:
            self.failed += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            of = f" of {self.total}" if self.total is not None else ""
            click.echo(f"mpgearman: progress: {self.succeeded + self.failed}{of}, "
                       f"{self.failed} failed, {self._rate(now):.1f} jobs/s", err=True)

    def note(self, message: str, error: bool = False) -> None:
        prefix = "mpgearman: error: " if error else "mpgearman: "
        if self.bar is not None:
            click.echo("", err=True)        # leave the bar's line
        click.echo(prefix + message, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        now = time.monotonic()
        click.echo(f"mpgearman: succeeded {self.succeeded}, failed {self.failed}, "
                   f"elapsed {now - self.started:.2f} s, {self._rate(now):.1f} jobs/s",
                   err=True)

    def _rate(self, now: float) -> float:
        elapsed = max(now - self.started, 1e-9)
        return (self.succeeded + self.failed) / elapsed
