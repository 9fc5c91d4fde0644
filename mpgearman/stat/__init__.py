"""`mpgearman stat`: how a job server (mpgearman or gearmand) is doing.

Owns the command's options and modes: one snapshot (text or --json) of
one server or several, --watch (watch.py), and a Nagios/Icinga check when
a threshold is given (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, bad
arguments included). Asking the server is probe.py's job, the figures
snapshot.py's, the text render.py's.

Must not: leave a traceback for anything a server or a user can cause; an
unreachable server is one line and a non-zero exit (3 in check mode).
"""
import signal
import sys

import click

from . import render, watch as watching
from .probe import ProbeError, parse_server, take_many
from .snapshot import document

WATCH_DEFAULT = 2.0
# options only a check takes: one of them on the line means Nagios is asking
CHECK_OPTIONS = ("--warn-queued", "--crit-queued", "--warn-workers-below",
                 "--crit-workers-below", "--warn-oldest", "--crit-oldest", "--function")


class StatCommand(click.Command):
    """In check mode (a threshold option or --function on the command
    line) a bad argument is a Nagios UNKNOWN, exit 3, on stdout as checks
    report; otherwise click's usage error, exit 2."""

    def make_context(self, info_name, args, parent=None, **extra):
        self.checking = any(a.split("=", 1)[0] in CHECK_OPTIONS for a in args)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            self._unknown(exc)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            self._unknown(exc)

    def _unknown(self, exc: click.UsageError):
        if not self.checking:
            raise exc
        message = " ".join(exc.format_message().split())
        click.echo(render.unknown(f"bad arguments: {message}"))
        sys.exit(render.UNKNOWN)


def _fail(message: str) -> None:
    click.echo(f"mpgearman: error: {message}", err=True)
    sys.exit(1)


def _addresses(values) -> list:
    """-s (repeated, comma- or space-separated, or MPGEARMAN_SERVERS) ->
    [(host, port)], as the client commands read them."""
    from ..client.commands import split_servers
    try:
        return [parse_server(s) for s in split_servers(values)]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'-s' / '--server'") from None


def _refuse_inverted(warn_queued, crit_queued, warn_workers, crit_workers,
                     warn_oldest, crit_oldest) -> None:
    if None not in (warn_queued, crit_queued) and warn_queued > crit_queued:
        raise click.UsageError(f"--warn-queued {warn_queued} is above "
                               f"--crit-queued {crit_queued}")
    if None not in (warn_oldest, crit_oldest) and warn_oldest > crit_oldest:
        raise click.UsageError(f"--warn-oldest {warn_oldest:g} is above "
                               f"--crit-oldest {crit_oldest:g}")
    if None not in (warn_workers, crit_workers) and warn_workers < crit_workers:
        raise click.UsageError(f"--warn-workers-below {warn_workers} is below "
                               f"--crit-workers-below {crit_workers}")


def _documents(servers, timeout, interval) -> tuple:
    """([snapshot documents], [ProbeError]) for the servers that answered
    and those that did not."""
    docs, errors = [], []
    for got in take_many(servers, timeout, interval):
        if isinstance(got, ProbeError):
            errors.append(got)
        else:
            where, first, second = got
            docs.append(document(where, second, first) if second is not None
                        else document(where, first))
    return docs, errors


def _check(servers, timeout, function, limits) -> int:
    """Judge the figures summed over the servers; any server that cannot
    be asked makes the result UNKNOWN."""
    docs, errors = _documents(servers, timeout, 0)
    if errors:
        click.echo(render.unknown("; ".join(map(str, errors))))
        return render.UNKNOWN
    state, line = render.check(render.merged(docs), function, *limits)
    click.echo(line)
    return state


def _show(servers, timeout, interval, as_json) -> None:
    docs, errors = _documents(servers, timeout, interval)
    for exc in errors:
        click.echo(f"mpgearman: error: {exc}", err=True)
    if docs and as_json:
        click.echo(render.as_json(docs[0] if len(servers) == 1 else docs))
    elif docs:
        click.echo("\n\n".join(render.as_text(doc) for doc in docs))
    if errors:
        sys.exit(1)


@click.command(cls=StatCommand)
@click.option("-s", "--server", "servers", multiple=True, envvar="MPGEARMAN_SERVERS",
              metavar="HOST[:PORT]",
              help="Job server to ask (mpgearman or gearmand); repeat or separate with "
                   "commas for several (env MPGEARMAN_SERVERS; default 127.0.0.1:4730).")
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
def stat(servers, timeout, interval, watch, as_json, function, warn_queued, crit_queued,
         warn_oldest, crit_oldest, warn_workers_below, crit_workers_below):
    """Show queues, workers and (for mpgearman) rates and processes of a
    job server, or of several; with a threshold option, act as a
    Nagios/Icinga check (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, bad
    arguments included) on the figures summed over the servers."""
    limits = (warn_queued, crit_queued, warn_workers_below, crit_workers_below,
              warn_oldest, crit_oldest)
    checking = any(v is not None for v in limits)
    if sum((checking, as_json, watch is not None)) > 1:
        raise click.UsageError("--json, --watch and the threshold options do not combine")
    if function is not None and not checking:
        raise click.UsageError("--function goes with a threshold option")
    _refuse_inverted(*limits)
    servers = _addresses(servers)
    if checking:
        sys.exit(_check(servers, timeout, function, limits))
    try:
        if watch is not None:
            # Ctrl-C ends the watch even when started from a shell that
            # ignores SIGINT for background jobs.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            watching.run(servers, timeout, watch)
            return
        _show(servers, timeout, interval, as_json)
    except ProbeError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
