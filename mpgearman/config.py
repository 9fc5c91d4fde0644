"""The only list of server options: names, units, defaults and limits.

Every `mpgearman serve` option maps to exactly one field here (a test checks),
and a config file (TOML) has exactly the same keys, spelled as the options
(`job-retries = 3`). Where a value comes from: the command line (or its
MPGEARMAN_SERVE_* variable) wins over the file, the file over the defaults.
Values are checked here whatever their source, so the file and the command
line accept and refuse the same things.
"""
import dataclasses
import difflib
import os
import socket
from dataclasses import dataclass

try:
    import tomllib
except ModuleNotFoundError:     # Python 3.10: the same parser, as a package
    import tomli as tomllib

GIB = 1 << 30
MAX_PAYLOAD = 4 * GIB - 1            # the packet size field is a u32
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DURABILITY = ("always", "second", "none")


class ConfigError(Exception):
    """A bad config file or option value; the message is one line for the user."""


def default_spool_dir() -> str:
    # systemd's CacheDirectory= is ours alone already; a user's cache is shared.
    if os.environ.get("CACHE_DIRECTORY"):
        return os.path.join(os.environ["CACHE_DIRECTORY"].split(":")[0], "spool")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mpgearman", "spool")


def default_data_dir(port: int) -> str:
    """Where the journal lives when --data-dir is not given: systemd's
    StateDirectory=, else $XDG_STATE_HOME/mpgearman/port-PORT (by default
    ~/.local/state/mpgearman/port-PORT)."""
    if os.environ.get("STATE_DIRECTORY"):
        return os.environ["STATE_DIRECTORY"].split(":")[0]
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "mpgearman", f"port-{port}")


# gearmand keeps a job handle in 64 bytes with its NUL; our job numbers go up
# to 2**64 - 1 (20 digits) after the prefix and its ":".
HANDLE_MAX = 63
PREFIX_MAX = HANDLE_MAX - 1 - 20


def default_handle_prefix(port: int, hostname: str | None = None) -> str:
    """"H:<hostname>:<port>": two servers on one host hand out different
    handles, and a server restarted on the same port the same ones. A
    hostname too long for PREFIX_MAX loses its domain, then its tail."""
    host = hostname if hostname is not None else socket.gethostname()
    room = PREFIX_MAX - len(f"H::{port}")
    if len(host.encode()) > room:
        host = host.split(".")[0]
    host = host.encode()[:room].decode("utf-8", "ignore") or "localhost"
    return f"H:{host}:{port}"


@dataclass(frozen=True, slots=True)
class Config:
    listen: str = ""                  # "" = every address, like gearmand
    port: int = 4730                  # 0 = pick a free port and print it
    acceptors: int = 0                # 0 = one per core
    job_retries: int = 0              # 0 = unlimited attempts
    job_handle_prefix: str = ""       # "" = "H:<hostname>:<port>"
    round_robin: bool = False
    worker_wakeup: int = 0            # NOOPs per queued job, 0 = all sleepers
    exceptions: bool = False          # every connection starts with `exceptions`
    max_payload: int = MAX_PAYLOAD    # bytes per packet
    log_level: str = "info"
    spool_dir: str = dataclasses.field(default_factory=default_spool_dir)
    spool_threshold: int = 64 * 1024  # data above this goes through a spool file
    ring_size: int = 4 << 20          # bytes per shared-memory ring
    max_queued_output: int = 256 << 20  # unsent bytes before a non-reading peer is dropped
    max_spool_bytes: int = 8 * GIB    # queued payloads kept in the spool, 0 = no limit
    metrics_port: int = 0             # Prometheus /metrics port, 0 = off
    metrics_listen: str = "127.0.0.1"  # its address; "" = every address
    request_timeout: int = 60         # s to finish a started request (or send 64K of it), 0 = never
    max_connections: int = 100_000    # per server, split among the acceptors; 0 = no limit
    data_dir: str = ""                # the journal's directory; "" = default_data_dir(port)
    durability: str = "second"        # always | second | none (DURABILITY)
    recover: bool = False             # start despite a damaged journal, keeping a copy

    @property
    def handle_prefix(self) -> bytes:
        return (self.job_handle_prefix or default_handle_prefix(self.port)).encode()

    @property
    def acceptor_count(self) -> int:
        # The cores this process may run on (a container or cpuset may allow
        # fewer than the machine has).
        return self.acceptors or len(os.sched_getaffinity(0)) or 1

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)


# Limits of the integer options, inclusive (None: no upper limit).
RANGES = {
    "port": (0, 65535),
    "acceptors": (0, 255),
    "job_retries": (0, None),
    "worker_wakeup": (0, None),
    "metrics_port": (0, 65535),
    "request_timeout": (0, None),
    "max_connections": (0, None),
}
# Byte counts: written 65536, "64K", "1M", "4G" (powers of 1024).
SIZES = ("max_payload", "spool_threshold", "ring_size", "max_queued_output", "max_spool_bytes")
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def option_name(field: str) -> str:
    """How the user spells a field: `--job-retries` on the command line,
    `job-retries` in the file."""
    return field.replace("_", "-")


def parse_size(value) -> int:
    """65536, "64K", "1M", "4GiB" -> bytes; ValueError if it is not a size."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in SIZE_UNITS else ""
    return int(text[:len(text) - len(unit)]) * SIZE_UNITS[unit]


def check(config: Config, label=lambda field: "--" + option_name(field)) -> Config:
    """Raise ConfigError naming the first value out of its limits; `label`
    says where a field's value came from (an option or a file key)."""
    def between(field, low, high):
        value = getattr(config, field)
        if value < low or (high is not None and value > high):
            limit = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(f"{label(field)} must be {limit}, not {value}")

    for field, (low, high) in RANGES.items():
        between(field, low, high)
    between("max_payload", 1, MAX_PAYLOAD)
    ring = config.ring_size
    if ring < 1 << 16 or ring & (ring - 1):
        raise ConfigError(f"{label('ring_size')} must be a power of two >= 64K, not {ring}")
    between("spool_threshold", 1024, ring // 8)
    between("max_queued_output", 1 << 20, 1 << 40)
    between("max_spool_bytes", 0, None)
    if len(config.job_handle_prefix.encode()) > PREFIX_MAX:
        raise ConfigError(f"{label('job_handle_prefix')} must be at most {PREFIX_MAX} bytes "
                          f"(a job handle is at most {HANDLE_MAX}), not "
                          f"{len(config.job_handle_prefix.encode())}")
    if config.durability not in DURABILITY:
        raise ConfigError(f"{label('durability')} must be one of {', '.join(DURABILITY)}, "
                          f"not {config.durability!r}")
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f"{label('log_level')} must be one of {', '.join(LOG_LEVELS)}, "
                          f"not {config.log_level!r}")
    return config


def read_file(path: str) -> dict:
    """The settings of a TOML file as {field: value}, each of the right type."""
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    return {_field_of(key, path): _typed(key, value, path) for key, value in table.items()}


def _field_of(key: str, path: str) -> str:
    field = key.replace("-", "_")
    if "_" in key or field not in FIELDS:
        keys = [option_name(f) for f in FIELDS]
        hint = difflib.get_close_matches(option_name(field), keys, n=1)
        hint = f" (did you mean {hint[0]}?)" if hint else f"; known keys: {', '.join(keys)}"
        raise ConfigError(f"config file {path}: unknown key {key!r}{hint}")
    return field


def _typed(key: str, value, path: str):
    field = key.replace("-", "_")
    kind = FIELDS[field].type         # bool, int or str
    where = f"config file {path}: {key}"
    if field in SIZES:
        try:
            return parse_size(value)
        except ValueError:
            raise ConfigError(f"{where} = {value!r} is not a size "
                              "(examples: 65536, \"64K\", \"1M\", \"4G\")") from None
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        wanted = {bool: "true or false", int: "a whole number"}.get(kind, "a string")
        raise ConfigError(f"{where} must be {wanted}, not {value!r}")
    return value


def load(path: str | None, overrides: dict) -> Config:
    """Defaults, then the file at `path` (if any), then `overrides` (the
    options given on the command line), checked together."""
    from_file = read_file(path) if path else {}
    config = Config(**{**from_file, **overrides})

    def label(field):
        if field in from_file and field not in overrides:
            return f"{option_name(field)} (config file {path})"
        return "--" + option_name(field)

    return check(config, label)
