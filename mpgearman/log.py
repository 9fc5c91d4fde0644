"""Logging: one line per event, with the process role and pid on each line.

Under journald (JOURNAL_STREAM set) no timestamp, since the journal adds its
own, and each line starts with its syslog priority (`<3>` for an error), which
journald takes as the entry's level, so `journalctl -p err` filters by it."""
import logging
import os
import sys

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4,
                   logging.ERROR: 3, logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    def format(self, record):
        return f"<{SYSLOG_PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def setup(level: str, role: str) -> None:
    under_journald = bool(os.environ.get("JOURNAL_STREAM"))
    fmt = f"mpgearman {role}[%(process)d] %(levelname)s %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter(fmt) if under_journald
                         else logging.Formatter("%(asctime)s " + fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level, logging.INFO))
