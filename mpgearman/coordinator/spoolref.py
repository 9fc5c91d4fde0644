"""References to payloads kept in spool files, and who may drop them.

Owns: the SpoolRef value and the SpoolOps protocol the Core is given.
Must not: open, read or write spool files (the core is sans-IO; the acceptor
owns the bytes). The only thing the core may do with a ref is keep it, give
it away (exactly once), share it (a new name for the same bytes) or release it.

Ownership rule: every SpoolRef handed to Core.packet() belongs to the core;
every SendSpooled action hands one ref to the receiver, who releases it.
"""
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SpoolRef:
    """A payload of `size` bytes stored in the spool file called `name`."""
    name: str
    size: int


class SpoolOps(Protocol):
    def share(self, ref: SpoolRef) -> SpoolRef:
        """Another name for the same bytes (a hard link)."""

    def release(self, ref: SpoolRef) -> None:
        """Drop this name."""

    def keep(self, ref: SpoolRef) -> None:
        """The payload of a journaled job: keep it across a restart (OSError
        when it cannot be)."""

    def unkeep(self, ref: SpoolRef) -> None:
        """That job ended: its kept copy goes."""


def release_data(spool: SpoolOps, data) -> None:
    """Drop `data` if it is a spool ref; plain bytes need nothing."""
    if type(data) is SpoolRef:
        spool.release(data)


def release_args(spool: SpoolOps, args: tuple) -> None:
    """Drop the data of a packet the core refuses or ignores (only the last
    argument of a has_data packet can be a ref)."""
    if args and type(args[-1]) is SpoolRef:
        spool.release(args[-1])
