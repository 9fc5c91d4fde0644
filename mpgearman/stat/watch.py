"""`mpgearman stat --watch`: refresh in place like top, for one server or
several.

Owns: the refresh loop, what each frame shows (fitted to the terminal's
height so the header never scrolls away), and backing off from a server
that stopped answering: it is asked again after 2, 4, 8 ... up to
MAX_BACKOFF seconds, and its frame says so, while the others keep their
pace. Rates come from consecutive refreshes of the same server.

Must not: exit; a ProbeError on the very first look at every server is
raised for the command to report (nothing was ever shown).
"""
import shutil
import sys
import time

from . import render
from .probe import ProbeError, take
from .snapshot import document

CLEAR = "\x1b[H\x1b[2J"      # cursor home, clear screen
MAX_BACKOFF = 60.0


class _Server:
    """What the watch remembers of one server between refreshes."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.prev = None          # last sample, for rates
        self.text = ""            # what its part of the frame shows
        self.error = None         # the ProbeError of its last look, if it failed
        self.failures = 0         # refreshes in a row it did not answer
        self.due = 0.0            # monotonic time of its next look

    def look(self, now: float, every: float, timeout: float, height) -> None:
        if now < self.due:
            return
        try:
            where, cur, _ = take(self.host, self.port, timeout, 0)
        except ProbeError as exc:
            self.error = exc
            self.failures += 1
            delay = min(every * 2 ** self.failures, max(MAX_BACKOFF, every))
            self.due = now + delay
            self.prev = None
            self.text = (f"mpgearman: error: {exc}\n(not answering "
                         f"{self.failures} time{'s' if self.failures != 1 else ''} in a row; "
                         f"asking again in {delay:g} s)")
            return
        self.text = render.as_text(document(where, cur, self.prev), height)
        self.prev, self.error, self.failures, self.due = cur, None, 0, now + every


def frame(servers: list, every: float, rows: int | None) -> str:
    """One screen: each server's part, then the footer, within `rows` lines
    (None: no limit)."""
    body = "\n\n".join(s.text for s in servers)
    lines = body.split("\n")
    footer = f"every {every:g} s, Ctrl-C to quit"
    if rows is not None and len(lines) + 2 > rows:
        lines = lines[:max(rows - 2, 1)]
    return "\n".join(lines) + f"\n\n{footer}\n"


def run(servers: list, timeout: float, every: float, out=None, rows=None,
        clock=time.monotonic, sleep=time.sleep) -> None:
    """Refresh until Ctrl-C (KeyboardInterrupt ends it quietly). `rows`
    is the terminal's height (asked each frame when None; no limit when
    the output is no terminal)."""
    out = out or sys.stdout
    watched = [_Server(host, port) for host, port in servers]
    first = True
    try:
        while True:
            height = rows or (shutil.get_terminal_size().lines if out.isatty() else None)
            # each server's part gets an equal share of the screen
            share = None if height is None else max((height - 2) // len(watched) - 1, 6)
            now = clock()
            for server in watched:
                server.look(now, every, timeout, share)
            if first and all(s.error is not None for s in watched):
                raise watched[0].error
            first = False
            # Not click.echo: it strips escape sequences when stdout is no tty.
            out.write(CLEAR + frame(watched, every, height))
            out.flush()
            wake = min(s.due for s in watched)
            sleep(max(wake - clock(), 0.05))
    except KeyboardInterrupt:
        pass
