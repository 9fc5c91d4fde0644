"""`mpgearman stat`: how a job server (mpgearman or gearmand) is doing.

Owns the command's options and modes: one snapshot (text or --json),
--watch (refresh in place like top), and a Nagios/Icinga check when a
threshold is given (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
Asking the server is probe.py's job, the figures snapshot.py's, the text
render.py's.

Must not: leave a traceback for anything a server or a user can cause; an
unreachable server is one line and a non-zero exit (3 in check mode).
"""
import signal
import sys
import time

import click

from . import render
from .probe import ProbeError, parse_server, take
from .snapshot import document

CLEAR = "\x1b[H\x1b[2J"      # cursor home, clear screen
WATCH_DEFAULT = 2.0


class Server(click.ParamType):
    name = "host[:port]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            return parse_server(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _fail(message: str) -> None:
    click.echo(f"mpgearman: error: {message}", err=True)
    sys.exit(1)


def _snapshot(server, timeout, interval) -> dict:
    where, first, second = take(*server, timeout, interval)
    return document(where, second, first) if second is not None else document(where, first)


def _watch(server, timeout, every) -> None:
    """Refresh in place until Ctrl-C; rates come from consecutive refreshes.
    A server that goes away shows as an error line until it answers again."""
    prev = None
    first = True
    # Ctrl-C ends the watch even when started from a shell that ignores
    # SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            try:
                where, cur, _ = take(*server, timeout, 0)
                text = render.as_text(document(where, cur, prev))
                prev = cur
            except ProbeError as exc:
                if first:
                    raise
                text, prev = f"mpgearman: error: {exc}", None
            first = False
            # Not click.echo: it strips escape sequences when stdout is no tty.
            sys.stdout.write(f"{CLEAR}{text}\n\nevery {every:g} s, Ctrl-C to quit\n")
            sys.stdout.flush()
            time.sleep(every)
    except KeyboardInterrupt:
        pass


@click.command()
@click.option("-s", "--server", type=Server(), default="127.0.0.1:4730", show_default=True,
              help="Job server to ask (mpgearman or gearmand).")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=5.0, show_default=True,
              help="Seconds to wait for the connection and for each answer.")
@click.option("--interval", type=click.FloatRange(0, 60), default=1.0, show_default=True,
              help="Seconds between the two samples that job rates come from (0: no rates).")
@click.option("--watch", type=click.FloatRange(0.1, 3600), is_flag=False,
              flag_value=WATCH_DEFAULT, default=None, metavar="[SECONDS]",
              help=f"Refresh in place every SECONDS (default {WATCH_DEFAULT:g}) until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--function", "function", metavar="NAME",
              help="Check thresholds against this function instead of the totals.")
@click.option("--warn-queued", type=click.IntRange(0), metavar="N",
              help="Check mode: WARNING when more than N jobs are queued.")
@click.option("--crit-queued", type=click.IntRange(0), metavar="N",
              help="Check mode: CRITICAL when more than N jobs are queued.")
@click.option("--warn-oldest", type=click.FloatRange(0), metavar="SECONDS",
              help="Check mode: WARNING when a queued job has waited more than SECONDS.")
@click.option("--crit-oldest", type=click.FloatRange(0), metavar="SECONDS",
              help="Check mode: CRITICAL when a queued job has waited more than SECONDS.")
@click.option("--warn-workers-below", type=click.IntRange(0), metavar="N",
              help="Check mode: WARNING when fewer than N workers are available.")
@click.option("--crit-workers-below", type=click.IntRange(0), metavar="N",
              help="Check mode: CRITICAL when fewer than N workers are available.")
def stat(server, timeout, interval, watch, as_json, function, warn_queued, crit_queued,
         warn_oldest, crit_oldest, warn_workers_below, crit_workers_below):
    """Show queues, workers and (for mpgearman) rates and processes of a
    job server; with a threshold option, act as a Nagios/Icinga check."""
    limits = (warn_queued, crit_queued, warn_workers_below, crit_workers_below,
              warn_oldest, crit_oldest)
    checking = any(v is not None for v in limits)
    if sum((checking, as_json, watch is not None)) > 1:
        raise click.UsageError("--json, --watch and the threshold options do not combine")
    if function is not None and not checking:
        raise click.UsageError("--function goes with a threshold option")
    if checking:
        try:
            doc = _snapshot(server, timeout, 0)
        except ProbeError as exc:
            click.echo(render.unknown(str(exc)))
            sys.exit(render.UNKNOWN)
        state, line = render.check(doc, function, *limits)
        click.echo(line)
        sys.exit(state)
    try:
        if watch is not None:
            _watch(server, timeout, watch)
            return
        doc = _snapshot(server, timeout, interval)
    except ProbeError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    click.echo(render.as_json(doc) if as_json else render.as_text(doc))
