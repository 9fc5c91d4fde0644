"""The functions a worker offers (names, callables and CAN_DO_TIMEOUTs)
and the settings every worker has.

It owns the decorator and register() shared by Worker and AsyncWorker and
their argument checks. It must not do I/O.
"""
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, Union

import orjson

from .errors import GearmanError
from .servers import ServerPool

Servers = Union[str, list[str]]
WorkFunction = Callable[..., Any]
F = TypeVar("F", bound=WorkFunction)


class FunctionRegistry:
    def __init__(self, servers: Servers = "127.0.0.1:4730", *, concurrency: int = 1,
                 client_id: str | None = None, spool_threshold: int = 64 << 20,
                 connect_timeout: float = 5.0, spool_dir: str | None = None) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise GearmanError("worker concurrency must be a positive integer")
        self.functions: dict[str, tuple[WorkFunction, float | None]] = {}
        self.pool = ServerPool(servers)
        self.concurrency = concurrency
        self.client_id = client_id
        self.spool_threshold = spool_threshold
        self.connect_timeout = connect_timeout
        self.spool_dir = spool_dir
        self._stopping = False
        self._running = 0
        self._rr = 0

    def function(self, name: str, timeout: float | None = None, *,
                 json: bool = False) -> Callable[[F], F]:
        """Decorator: @worker.function("name", timeout=seconds, json=False).
        See register()."""
        def decorate(fn: F) -> F:
            self.register(name, fn, timeout, json=json)
            return fn
        return decorate

    def register(self, name: str, fn: WorkFunction, timeout: float | None = None, *,
                 json: bool = False) -> None:
        """Offer `fn` as `name`. It is called with the WorkerJob, or with
        json=True with the payload decoded from JSON (orjson), its return
        value then being sent encoded. timeout: seconds the server gives a
        run (CAN_DO_TIMEOUT, at least 1 s) before it hands the job to
        another worker; see WorkerJob.expired."""
        if not isinstance(name, str) or not name or "\0" in name:
            raise GearmanError(f"function name must be a non-empty string without "
                               f"NUL, not {name!r}")
        if not callable(fn):
            raise GearmanError(f"{name}: {fn!r} is not callable")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise GearmanError(f"{name}: timeout must be a positive number of seconds")
        self.functions[name] = (json_function(fn) if json else fn, timeout)

    def timeouts(self) -> dict[str, float | None]:
        return {name: timeout for name, (_, timeout) in self.functions.items()}

    def lookup(self, name: str) -> WorkFunction | None:
        entry = self.functions.get(name)
        return entry[0] if entry else None

    def timeout_of(self, name: str) -> float | None:
        entry = self.functions.get(name)
        return entry[1] if entry else None


def json_function(fn: WorkFunction) -> WorkFunction:
    """fn(object) -> object as a worker function of the job's bytes."""
    if inspect.iscoroutinefunction(fn):
        async def run_async(job: Any) -> bytes:
            return orjson.dumps(await fn(orjson.loads(job.data)))
        return run_async

    def run(job: Any) -> bytes:
        return orjson.dumps(fn(orjson.loads(job.data)))
    return run
