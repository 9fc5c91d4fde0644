"""The `mpgearman` command. Thin: it turns options into a Config and hands
it to the part of the package that does the work."""
import functools
import sys

import click
from click.core import ParameterSource

from . import __version__
from . import config
from .config import Config


class Size(click.ParamType):
    """A byte count: 65536, 64K, 1M, 4G (powers of 1024)."""
    name = "size"

    def convert(self, value, param, ctx):
        try:
            return config.parse_size(value)
        except ValueError:
            self.fail(f"{value!r} is not a size (examples: 65536, 64K, 1M, 4G)", param, ctx)


def _range(field):
    return click.IntRange(*config.RANGES[field])


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                               "auto_envvar_prefix": "MPGEARMAN"})
@click.version_option(__version__, prog_name="mpgearman")
def main():
    """mpgearman: a multi-process Gearman job server."""


D = Config()


@main.command()
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML file whose keys are these options (job-retries = 3); "
                   "options given here win over it.")
@click.option("-L", "--listen", default=D.listen, show_default="all addresses",
              help="Address to listen on (IPv4 and IPv6 when empty).")
@click.option("-p", "--port", type=_range("port"), default=D.port, show_default=True,
              help="TCP port; 0 picks a free port and prints it.")
@click.option("--acceptors", type=_range("acceptors"), default=D.acceptors,
              show_default="one per core", help="Acceptor processes (0 = one per core).")
@click.option("-j", "--job-retries", type=_range("job_retries"), default=D.job_retries,
              show_default=True, help="Attempts before a job whose workers keep vanishing fails (0 = unlimited).")
@click.option("--job-handle-prefix", default=D.job_handle_prefix,
              show_default="H:<hostname>:<port>",
              help="Prefix of job handles (at most 42 bytes).")
@click.option("-R", "--round-robin", is_flag=True, default=D.round_robin,
              help="Rotate each worker's functions after every assignment.")
@click.option("-w", "--worker-wakeup", type=_range("worker_wakeup"), default=D.worker_wakeup,
              show_default=True, help="Sleeping workers woken per queued job (0 = all).")
@click.option("--exceptions", is_flag=True, default=D.exceptions,
              help="Forward WORK_EXCEPTION to every client (as if each sent OPTION_REQ exceptions).")
@click.option("--max-payload", type=Size(), default=D.max_payload, show_default=True,
              help="Largest packet payload accepted, in bytes (up to 4G-1).")
@click.option("--log-level", type=click.Choice(config.LOG_LEVELS),
              default=D.log_level, show_default=True)
@click.option("--spool-dir", default=None, show_default="$CACHE_DIRECTORY/spool or ~/.cache/mpgearman/spool",
              help="Directory for payloads above --spool-threshold (on disk, not tmpfs).")
@click.option("--spool-threshold", type=Size(), default=D.spool_threshold, show_default=True,
              help="Payloads larger than this are streamed through the spool.")
@click.option("--ring-size", type=Size(), default=D.ring_size, show_default=True,
              help="Bytes per shared-memory ring (a power of two, at least 64K).")
@click.option("--max-queued-output", type=Size(), default=D.max_queued_output,
              show_default=True,
              help="Bytes waiting for a connection that does not read before it is dropped "
                   "(spooled payloads count; the packet being written does not).")
@click.option("--max-spool-bytes", type=Size(), default=D.max_spool_bytes, show_default=True,
              help="Bytes of queued payloads kept in the spool; a submission past it gets "
                   "an ERROR (0 = no limit).")
@click.option("--request-timeout", type=_range("request_timeout"), default=D.request_timeout,
              show_default=True,
              help="Seconds a connection may take to finish a request it started (a header, "
                   "an admin line), or to send 64K more of a body (0 = never). Idle "
                   "connections are never timed out.")
@click.option("--max-connections", type=_range("max_connections"), default=D.max_connections,
              show_default=True,
              help="Connections the server holds at most, split evenly among the acceptors; "
                   "beyond it new ones wait in the backlog (0 = no limit).")
@click.option("--metrics-port", type=_range("metrics_port"), default=D.metrics_port,
              show_default="off",
              help="Serve Prometheus metrics on http://METRICS-LISTEN:PORT/metrics.")
@click.option("--metrics-listen", default=D.metrics_listen, show_default=True,
              help="Address of the metrics endpoint (every address when empty; it has "
                   "no authentication and shows pids and function names).")
@click.option("--data-dir", default=D.data_dir,
              show_default="$STATE_DIRECTORY or ~/.local/state/mpgearman/port-N",
              help="Directory of the journal that keeps background jobs across restarts.")
@click.option("--durability", type=click.Choice(config.DURABILITY), default=D.durability,
              show_default=True,
              help="always: JOB_CREATED after the job is fdatasync'ed; second: after it is "
                   "written, synced every second; none: memory only.")
@click.option("--recover", is_flag=True, default=D.recover,
              help="Start even if the journal is damaged in the middle (a copy is kept).")
@click.pass_context
def serve(ctx, config_file, **options):
    """Run the job server in the foreground."""
    given = {name: value for name, value in options.items()
             if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)}
    load = functools.partial(config.load, config_file, given)
    try:
        settings = load()
    except config.ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    from . import native
    try:
        native.check_platform()
    except native.UnsupportedPlatform as exc:
        raise click.ClickException(f"cannot start: {exc}") from None

    from .supervisor import serve as run_server
    sys.exit(run_server(settings, reload=load))


from .client.commands import job_status, submit, work  # noqa: E402  (after `main`)
for _command in (submit, work, job_status):
    main.add_command(_command)
main.add_command(__import__("mpgearman.stat", fromlist=["stat"]).stat)
