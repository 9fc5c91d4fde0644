"""The client-side commands of `mpgearman`: `submit`, `work` and `job-status`.

Owns the command-line surface of the client library: argument parsing, where
a job's data comes from, how outcomes map to exit statuses, and the one-line
error format (`mpgearman: error: ...`). It must not speak the protocol
itself: every packet goes through `Client` / `Worker`. The library is
imported inside the commands, so `mpgearman serve` never loads it.

Exit statuses (also in each command's --help and in README.md):
0 success, 1 the job failed or raised an exception (or the job is unknown),
2 bad arguments, 3 no server reachable or the connection was lost,
4 timed out.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from .jobs import Event, JobStatus
    from .sync import Client, Job

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_TIMEOUT = 0, 1, 2, 3, 4
DEFAULT_SERVER = "127.0.0.1:4730"
EXIT_HELP = """\b
Exit status: 0 success, 1 the job failed or raised an exception,
2 bad arguments, 3 no server reachable or connection lost, 4 timed out."""


# ---------------------------------------------------------------------------
# errors and exit statuses

def die(message: str, code: int) -> NoReturn:
    click.echo(f"mpgearman: error: {one_line(message)}", err=True)
    sys.exit(code)


def one_line(message: object) -> str:
    text = " ".join(str(message).split())
    return text or "unknown error"


def exit_code(exc: BaseException) -> int:
    """The exit status that tells what `exc` means."""
    from . import ServerUnavailable, Timeout
    if isinstance(exc, ServerUnavailable):
        return EXIT_UNREACHABLE
    if isinstance(exc, Timeout):
        return EXIT_TIMEOUT
    return EXIT_FAILED


def describe(exc: BaseException) -> str:
    """One line for a library exception, naming the kind when the message
    alone would not (a bare WORK_FAIL carries no text)."""
    from . import JobException, JobFailed
    text = one_line(exc) if str(exc).strip() else ""
    if isinstance(exc, JobException):
        return f"job raised an exception: {one_line(getattr(exc, 'message', exc))}"
    if isinstance(exc, JobFailed):
        return text if "fail" in text.lower() else f"job failed{': ' + text if text else ''}"
    return text or type(exc).__name__


@contextlib.contextmanager
def reporting() -> Iterator[None]:
    """Turn every expected failure into one stderr line and its exit status;
    nothing the user can cause ends in a traceback."""
    from . import GearmanError
    try:
        yield
    except GearmanError as exc:
        die(describe(exc), exit_code(exc))
    except BrokenPipeError:
        # Whoever read our stdout has gone (`| head`): not worth a message.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        die("interrupted", 130)
    except OSError as exc:
        # Local files (the data file, stdin, stdout) rather than the network:
        # the library reports the network as ServerUnavailable.
        where = f": {exc.filename}" if exc.filename else ""
        die(f"{exc.strerror or exc}{where}", EXIT_USAGE)


# ---------------------------------------------------------------------------
# option types and shared options

def split_servers(values: Iterable[str] | None) -> list[str]:
    """-s may be repeated, and each value (or MPGEARMAN_SERVERS) may hold a
    comma- or space-separated list."""
    servers = [s for v in values or () for s in re.split(r"[,\s]+", v) if s]
    return servers or [DEFAULT_SERVER]


def open_client(servers: Iterable[str] | None, **options: Any) -> Client:
    """A `Client` for the -s values; a malformed address is a usage error."""
    from .. import Client
    from . import GearmanError, ServerUnavailable, Timeout
    try:
        return Client(split_servers(servers), **options)
    except (ServerUnavailable, Timeout):
        raise
    except GearmanError as exc:
        raise click.BadParameter(one_line(exc), param_hint="'-s' / '--server'")


class When(click.ParamType):  # type: ignore[type-arg]  # generic in newer click
    """A start time: Unix time in seconds, or an ISO 8601 date-time (local
    time when it has no offset)."""
    name = "time"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, (datetime, int, float)):
            return value
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None:
            if not math.isfinite(number) or number < 0:
                self.fail(f"{value!r} is not a Unix time", param, ctx)
            return int(number) if number.is_integer() else number
        text = value.strip()
        if text[-1:] in ("Z", "z"):     # Python 3.10's fromisoformat wants +00:00
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is neither a Unix time nor an ISO date-time "
                      "(examples: 1767225600, 2026-01-01T00:00:00Z)", param, ctx)
        return moment if moment.tzinfo else moment.astimezone()


def server_option(f: F) -> F:
    return click.option(
        "-s", "--server", "servers", multiple=True, envvar="MPGEARMAN_SERVERS",
        metavar="HOST[:PORT]",
        help="Job server; repeat or separate with commas for several "
             f"(env MPGEARMAN_SERVERS; default {DEFAULT_SERVER}).")(f)


def connect_timeout_option(f: F) -> F:
    return click.option(
        "--connect-timeout", type=click.FloatRange(0, min_open=True), default=5.0,
        show_default=True, help="Seconds to wait for a server to accept a connection.")(f)


# ---------------------------------------------------------------------------
# submit

@click.command(epilog=EXIT_HELP)
@click.argument("function")
@click.argument("data", required=False)
@click.option("-f", "--file", "path",
              type=click.Path(exists=True, dir_okay=False, readable=True),
              help="Send the contents of this file (streamed).")
@click.option("-b", "--background", is_flag=True,
              help="Queue the job and print its handle instead of waiting.")
@click.option("--priority", type=click.Choice(["high", "normal", "low"]),
              default="normal", show_default=True)
@click.option("-u", "--unique", help="Unique id: submissions sharing one coalesce.")
@click.option("--when", type=When(),
              help="Run at this time (Unix time or ISO date-time); needs --background.")
@click.option("-t", "--timeout", type=click.FloatRange(0, min_open=True),
              help="Seconds to wait for the result (per job with --batch).")
@click.option("--batch", type=click.Path(allow_dash=True, dir_okay=False),
              metavar="FILE|-", help="Submit one job per line of FILE (- for stdin); "
              "results are printed one per line, in input order.")
@click.option("-c", "--concurrency", type=click.IntRange(1, 10000), default=16,
              show_default=True, help="Jobs in flight at once with --batch.")
@click.option("--progress-interval", type=click.FloatRange(0, min_open=True), default=5.0,
              show_default=True,
              help="Seconds between progress lines with --batch when stderr is not a terminal.")
@server_option
@connect_timeout_option
def submit(function: str, data: str | None, path: str | None, background: bool,
           priority: str, unique: str | None, when: Any, timeout: float | None,
           batch: str | None, concurrency: int, progress_interval: float,
           servers: tuple[str, ...], connect_timeout: float) -> None:
    """Submit a job to FUNCTION and print its result to stdout.

    The data is DATA, the contents of --file, or stdin when DATA is absent
    and stdin is not a terminal (or DATA is -). A background job prints its
    handle, for `mpgearman job-status`.
    """
    if batch is not None:
        if data is not None or path is not None:
            raise click.UsageError("--batch takes its data from FILE: give no DATA or --file")
        if unique is not None:
            raise click.UsageError("--unique would make every line of --batch one job")
    elif data is not None and path is not None:
        raise click.UsageError("give DATA or --file, not both")
    if when is not None and not background:
        raise click.UsageError("--when schedules a background job: add --background")
    options = dict(priority=priority, background=background)
    if when is not None:
        options["when"] = when
    with reporting():
        with open_client(servers, connect_timeout=connect_timeout, timeout=timeout) as client:
            if batch is not None:
                from .commands_batch import run_batch
                code = run_batch(client, function, batch, options, timeout=timeout,
                                 concurrency=concurrency, interval=progress_interval)
                sys.exit(code)
            payload = job_data(data, path)
            submit_one(client, function, payload, dict(options, unique=unique), timeout)


def job_data(data: str | None, path: str | None) -> Any:
    """What `Client.submit` should send: the argument's bytes as typed, a
    file path (the library streams it), or stdin."""
    if path is not None:
        return Path(path)
    # No stdin at all (a daemon with fd 0 closed) means no data.
    piped = sys.stdin is not None and not sys.stdin.isatty()
    if data == "-" or (data is None and piped):
        if sys.stdin is None:
            raise click.UsageError("DATA is -, but there is no stdin")
        return sys.stdin.buffer
    return os.fsencode(data) if data is not None else b""


def submit_one(client: Client, function: str, payload: Any, options: dict[str, Any],
               timeout: float | None) -> None:
    started = time.monotonic()
    job = client.submit(function, payload, **options)
    if options["background"]:
        click.echo(job.handle)
        return
    out = Tail(sys.stdout.buffer)
    result_to(job, out, function, timeout, started, show_event)
    if out.last not in (b"", b"\n") and sys.stdout.isatty():
        out.write(b"\n")      # the shell prompt starts on a line of its own
    out.flush()


class Tail:
    """A binary stream that remembers the last byte written to it."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.last = out, b""

    def write(self, data: bytes) -> int:
        if len(data):
            self.last = bytes(data[-1:])
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def show_event(event: Event, prefix: str = "") -> None:
    """WORK_STATUS and WORK_WARNING of a job, one line each on stderr."""
    from . import WorkStatus
    if isinstance(event, WorkStatus):
        num, den = event.numerator, event.denominator
        percent = f" ({100 * num / den:.0f}%)" if den else ""
        click.echo(f"mpgearman: {prefix}status {num}/{den}{percent}", err=True)
    else:
        text = event.data.decode("utf-8", "replace")
        click.echo(f"mpgearman: {prefix}warning: {one_line(text)}", err=True)


def result_to(job: Job, out: Any, function: str, timeout: float | None, started: float,
              on_event: Callable[[Event], None] | None = None) -> None:
    """Stream the job's data chunks and result to `out`, giving up `timeout`
    seconds after `started` (its submission); on_event gets the job's
    status and warnings."""
    from . import Timeout
    if timeout is None:
        job.result_to(out, on_event=on_event)
        return
    try:
        job.result_to(out, timeout=max(0.0, timeout - (time.monotonic() - started)),
                      on_event=on_event)
    except Timeout:
        # Say the limit the user gave, not the remainder that ran out.
        raise Timeout(f"job {job.handle} ({function}): no result within {timeout:g} s") \
            from None


# ---------------------------------------------------------------------------
# job-status

@click.command("job-status", epilog="""\b
Exit status: 0 the job is known, 1 no server knows it, 2 bad arguments,
3 no server reachable, 4 timed out.""")
@click.argument("handle")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@server_option
@connect_timeout_option
def job_status(handle: str, as_json: bool, servers: Iterable[str],
               connect_timeout: float) -> None:
    """Print what the server knows of the job HANDLE.

    With several servers each is asked in turn; the first that knows the
    job answers.
    """
    from . import GearmanError
    servers = split_servers(servers)
    found: tuple[str, JobStatus] | None = None
    errors: list[GearmanError] = []
    with reporting():
        with open_client(servers, connect_timeout=connect_timeout) as client:
            for server in servers:
                try:
                    status = client.status(handle, server=server)
                except GearmanError as exc:
                    if exit_code(exc) == EXIT_FAILED:
                        raise
                    errors.append(exc)
                    continue
                found = (server, status)
                if status.known:
                    break
    if found is None:
        die("; ".join(describe(e) for e in errors), exit_code(errors[-1]))
    server, status = found
    print_status(handle, server, status, as_json)
    if not status.known:
        if errors:
            # The job may live on a server that did not answer.
            die(f"job {handle} is unknown to the servers that answered; "
                + "; ".join(describe(e) for e in errors), exit_code(errors[-1]))
        die(f"no server knows job {handle} (it has ended, or never existed)", EXIT_FAILED)


def print_status(handle: str, server: str, status: JobStatus, as_json: bool) -> None:
    if as_json:
        import orjson
        click.echo(orjson.dumps({
            "handle": handle, "server": server, "known": bool(status.known),
            "running": bool(status.running), "numerator": status.numerator,
            "denominator": status.denominator}).decode())
        return
    progress = f"{status.numerator}/{status.denominator}"
    if status.denominator:
        progress += f" ({100 * status.numerator / status.denominator:.0f}%)"
    click.echo(f"handle:   {handle}\nserver:   {server}\n"
               f"known:    {'yes' if status.known else 'no'}\n"
               f"running:  {'yes' if status.running else 'no'}\n"
               f"progress: {progress}")


# ---------------------------------------------------------------------------
# work

@click.command(epilog="""\b
Exit status: 0 stopped by SIGTERM or SIGINT after finishing the jobs in hand,
2 bad arguments. A server it cannot reach is named once on stderr and
retried for ever, so `work` does not exit with 3 (no server reachable).""")
@click.argument("function")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-c", "--concurrency", type=click.IntRange(1, 1024), default=1,
              show_default=True, help="Jobs run at once (one COMMAND process each).")
@click.option("--timeout", type=click.IntRange(1, None),
              help="Seconds the server gives each job before handing it to "
                   "another worker (CAN_DO_TIMEOUT).")
@server_option
def work(function: str, command: tuple[str, ...], concurrency: int, timeout: int | None,
         servers: tuple[str, ...]) -> None:
    """Serve FUNCTION by running COMMAND for each job.

    The job's data is COMMAND's stdin and its stdout is the result, as with
    `gearman -w -f FUNCTION -- COMMAND`. A non-zero exit fails the job: with
    the last line of COMMAND's stderr as a WORK_EXCEPTION when it wrote one,
    else as WORK_FAIL. Put `--` before COMMAND when it has options.
    """
    from .commands_work import run_worker
    with reporting():
        sys.exit(run_worker(function, list(command), split_servers(servers),
                            concurrency=concurrency, timeout=timeout))
