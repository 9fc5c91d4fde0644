"""What a reload (SIGHUP, `systemctl reload`) may change in a running server.

Owns: which settings apply live and which process applies each, the
comparison of the running settings with a freshly read file, and the
text form in which changed settings reach the coordinator.

  coordinator, at once:   log-level job-retries worker-wakeup round-robin
                          exceptions (connections made from then on)
                          max-spool-bytes
  acceptors, by a roll:   log-level max-payload spool-threshold
                          max-queued-output request-timeout
                          max-connections max-spool-bytes (a fresh set
                          of acceptors starts with them, then the old set
                          is retired)
  supervisor, at once:    log-level
  only after a restart:   everything else (listen, port, acceptors,
                          job-handle-prefix, ring-size, spool-dir,
                          metrics-port, metrics-listen, and any setting
                          not listed here)

Must not: parse files (config.load does, through the `reload` callable
the command line builds) or signal processes (the supervisor does).
"""
import logging

from .config import FIELDS, Config, ConfigError, check, option_name

logger = logging.getLogger(__name__)

COORDINATOR = ("log_level", "job_retries", "worker_wakeup", "round_robin", "exceptions",
               "max_spool_bytes")
ACCEPTOR = ("log_level", "max_payload", "spool_threshold", "max_queued_output",
            "request_timeout", "max_connections", "max_spool_bytes")
LIVE = frozenset(COORDINATOR + ACCEPTOR)
# Named so that a new setting must be placed (a test checks every field is
# in LIVE or here); compare() treats any field not in LIVE as this kind.
RESTART = ("listen", "port", "acceptors", "job_handle_prefix", "ring_size", "spool_dir",
           "metrics_port", "metrics_listen", "data_dir", "durability", "recover")


def compare(running: Config, fresh: Config):
    """(live, fixed): the changed settings that apply now, {field: new
    value}, and those that need a restart, [(field, running, fresh)]."""
    live, fixed = {}, []
    for field in FIELDS:
        old, new = getattr(running, field), getattr(fresh, field)
        if old == new:
            continue
        if field in LIVE:
            live[field] = new
        else:
            fixed.append((field, old, new))
    return live, fixed


def read(reload, settings: Config, running: Config):
    """Read the settings again through `reload`; log what changed and what
    cannot change until a restart. Returns the live changes ({} for none),
    or None when the new settings are bad (logged; nothing changes)."""
    try:
        fresh = reload()
        live, fixed = compare(settings, fresh)
        check(running.replace(**live))
    except ConfigError as exc:
        logger.error("reload failed, the running configuration stays: %s", exc)
        return None
    for field, old, new in fixed:
        logger.warning("reload: %s changed (%r -> %r) but applies only after a restart",
                       option_name(field), old, new)
    if live:
        logger.info("reload: %s", describe(settings, live))
    else:
        logger.info("reload: no setting that applies live has changed")
    return live


def describe(running: Config, live: dict) -> str:
    """"job-retries 0 -> 3, round-robin False -> True" for the log."""
    return ", ".join(f"{option_name(f)} {getattr(running, f)} -> {v}" for f, v in live.items())


def encode(config: Config, fields) -> list:
    """["job_retries=3", ...]: words for a control line (no spaces inside)."""
    return [f"{f}={int(v) if isinstance(v, bool) else v}"
            for f in fields for v in (getattr(config, f),)]


def decode(words) -> dict:
    """The inverse of encode(), each value of its field's type."""
    out = {}
    for word in words:
        field, _, text = word.partition("=")
        kind = FIELDS[field].type
        out[field] = bool(int(text)) if kind is bool else kind(text)
    return out
