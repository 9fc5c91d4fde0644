"""mpgearman: a multi-process Gearman job server, and a client and worker
library (mpgearman.client).

The library's public names are loaded on first use, so that the server's
processes do not import the client code.
"""

__version__ = "0.1.0"

_CLIENT_NAMES = ("Client", "AsyncClient", "Worker", "AsyncWorker", "WorkFailed",
                 "GearmanError", "ServerUnavailable", "JobFailed", "JobException",
                 "Timeout", "ProtocolError", "JobStatus", "WorkData", "WorkWarning",
                 "WorkStatus")
__all__ = list(_CLIENT_NAMES)


def __getattr__(name: str) -> object:
    if name in _CLIENT_NAMES:
        from . import client
        return getattr(client, name)
    raise AttributeError(f"module 'mpgearman' has no attribute {name!r}")
