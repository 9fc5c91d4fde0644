"""Logging: one line per event, with the process role and pid on each line.
Under journald (JOURNAL_STREAM set) no timestamp: the journal adds its own."""
import logging
import os
import sys

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}


def setup(level: str, role: str) -> None:
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    fmt = f"{stamp}mpgearman {role}[%(process)d] %(levelname)s %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level, logging.INFO))
