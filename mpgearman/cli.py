"""The `mpgearman` command. Thin: it turns options into a Config and hands
it to the part of the package that does the work."""
import sys

import click

from . import __version__
from .config import Config

MAX_PAYLOAD = 4 * (1 << 30) - 1


class Size(click.ParamType):
    """A byte count: 65536, 64K, 1M, 4G (powers of 1024)."""
    name = "size"
    UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("B").removesuffix("I")
        unit = text[-1:] if text[-1:] in self.UNITS else ""
        try:
            return int(text[:len(text) - len(unit)]) * self.UNITS[unit]
        except ValueError:
            self.fail(f"{value!r} is not a size (examples: 65536, 64K, 1M, 4G)", param, ctx)


def _check_range(value, low, high, what):
    if not low <= value <= high:
        raise click.BadParameter(f"{what} must be between {low} and {high}, not {value}")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                               "auto_envvar_prefix": "MPGEARMAN"})
@click.version_option(__version__, prog_name="mpgearman")
def main():
    """mpgearman: a multi-process Gearman job server."""


D = Config()


@main.command()
@click.option("-L", "--listen", default=D.listen, show_default="all addresses",
              help="Address to listen on (IPv4 and IPv6 when empty).")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=D.port, show_default=True,
              help="TCP port; 0 picks a free port and prints it.")
@click.option("--acceptors", type=click.IntRange(0, 255), default=D.acceptors,
              show_default="one per core", help="Acceptor processes (0 = one per core).")
@click.option("-j", "--job-retries", type=click.IntRange(0, None), default=D.job_retries,
              show_default=True, help="Attempts before a job whose workers keep vanishing fails (0 = unlimited).")
@click.option("--job-handle-prefix", default=D.job_handle_prefix, show_default="H:<hostname>",
              help="Prefix of job handles.")
@click.option("-R", "--round-robin", is_flag=True, default=D.round_robin,
              help="Rotate each worker's functions after every assignment.")
@click.option("-w", "--worker-wakeup", type=click.IntRange(0, None), default=D.worker_wakeup,
              show_default=True, help="Sleeping workers woken per queued job (0 = all).")
@click.option("--exceptions", is_flag=True, default=D.exceptions,
              help="Forward WORK_EXCEPTION to every client (as if each sent OPTION_REQ exceptions).")
@click.option("--max-payload", type=Size(), default=D.max_payload, show_default=True,
              help="Largest packet payload accepted, in bytes (up to 4G-1).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error", "critical"]),
              default=D.log_level, show_default=True)
@click.option("--spool-dir", default=None, show_default="$CACHE_DIRECTORY or ~/.cache/mpgearman/spool",
              help="Directory for payloads above --spool-threshold (on disk, not tmpfs).")
@click.option("--spool-threshold", type=Size(), default=D.spool_threshold, show_default=True,
              help="Payloads larger than this are streamed through the spool.")
@click.option("--ring-size", type=Size(), default=D.ring_size, show_default=True,
              help="Bytes per shared-memory ring (a power of two, at least 64K).")
@click.option("--max-queued-output", type=Size(), default=D.max_queued_output,
              show_default=True,
              help="Bytes waiting for a connection that does not read before it is dropped "
                   "(spooled payloads do not count).")
def serve(**options):
    """Run the job server in the foreground."""
    _check_range(options["max_payload"], 1, MAX_PAYLOAD, "--max-payload")
    ring = options["ring_size"]
    if ring < 1 << 16 or ring & (ring - 1):
        raise click.BadParameter(f"--ring-size must be a power of two >= 64K, not {ring}")
    _check_range(options["spool_threshold"], 1024, ring // 8, "--spool-threshold")
    _check_range(options["max_queued_output"], 1 << 20, 1 << 40, "--max-queued-output")
    if options["spool_dir"] is None:
        del options["spool_dir"]
    config = Config(**options)

    from .supervisor import serve as run_server
    sys.exit(run_server(config))
