"""Output actions of the Core, appended to Core.out for the caller to route.

Owns: the three action types. They are NamedTuples because one is built per
reply on the hot path and tuple construction is the cheapest immutable
record CPython has; match/case and attribute access work as usual.
Must not: carry anything but a connection id and bytes or one spool ref.
"""
from typing import NamedTuple

from .spoolref import SpoolRef


class Send(NamedTuple):
    """Write `data` (complete encoded packets or admin text) to `conn`."""
    conn: int
    data: bytes


class SendSpooled(NamedTuple):
    """Write `head` (encode_head(...) bytes), then the bytes of the spool file
    `ref`, to `conn`. The receiver consumes (releases) `ref`."""
    conn: int
    head: bytes
    ref: SpoolRef


class Close(NamedTuple):
    """Close `conn` (after sending what was queued before this action). The
    core has already forgotten the connection; a later disconnect(conn) is a
    no-op."""
    conn: int
