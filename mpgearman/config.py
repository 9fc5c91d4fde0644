"""The only list of server options: names, units and defaults.

Every `mpgearman serve` option maps to exactly one field here (a test checks).
"""
import dataclasses
import os
import socket
from dataclasses import dataclass

GIB = 1 << 30


def default_spool_dir() -> str:
    base = os.environ.get("CACHE_DIRECTORY") or os.environ.get("XDG_CACHE_HOME") \
        or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base.split(":")[0], "mpgearman", "spool")


@dataclass(frozen=True, slots=True)
class Config:
    listen: str = ""                  # "" = every address, like gearmand
    port: int = 4730                  # 0 = pick a free port and print it
    acceptors: int = 0                # 0 = one per core
    job_retries: int = 0              # 0 = unlimited attempts
    job_handle_prefix: str = ""       # "" = "H:<hostname>"
    round_robin: bool = False
    worker_wakeup: int = 0            # NOOPs per queued job, 0 = all sleepers
    exceptions: bool = False          # every connection starts with `exceptions`
    max_payload: int = 4 * GIB - 1    # bytes per packet
    log_level: str = "info"
    spool_dir: str = dataclasses.field(default_factory=default_spool_dir)
    spool_threshold: int = 64 * 1024  # data above this goes through a spool file
    ring_size: int = 4 << 20          # bytes per shared-memory ring
    max_queued_output: int = 256 << 20  # unsent bytes before a non-reading peer is dropped

    @property
    def handle_prefix(self) -> bytes:
        return (self.job_handle_prefix or "H:" + socket.gethostname()).encode()

    @property
    def acceptor_count(self) -> int:
        # The cores this process may run on (a container or cpuset may allow
        # fewer than the machine has).
        return self.acceptors or len(os.sched_getaffinity(0)) or 1

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)
