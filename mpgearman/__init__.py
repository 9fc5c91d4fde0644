"""mpgearman: a multi-process Gearman job server, and a client and worker
library (mpgearman.client).

The library's public names are loaded on first use, so that the server's
processes do not import the client code.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:       # the names a type checker sees; loaded lazily below
    from .client import (
        AsyncClient as AsyncClient,
        AsyncWorker as AsyncWorker,
        Client as Client,
        GearmanError as GearmanError,
        JobException as JobException,
        JobFailed as JobFailed,
        JobStatus as JobStatus,
        ProtocolError as ProtocolError,
        ServerUnavailable as ServerUnavailable,
        Timeout as Timeout,
        WorkData as WorkData,
        WorkFailed as WorkFailed,
        Worker as Worker,
        WorkStatus as WorkStatus,
        WorkWarning as WorkWarning,
    )

__version__ = "0.1.0"

_CLIENT_NAMES = ("Client", "AsyncClient", "Worker", "AsyncWorker", "WorkFailed",
                 "GearmanError", "ServerUnavailable", "JobFailed", "JobException",
                 "Timeout", "ProtocolError", "JobStatus", "WorkData", "WorkWarning",
                 "WorkStatus")
__all__ = list(_CLIENT_NAMES)


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from . import client
        return getattr(client, name)
    raise AttributeError(f"module 'mpgearman' has no attribute {name!r}")
