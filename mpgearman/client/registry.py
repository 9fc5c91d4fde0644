"""The functions a worker offers (names, callables and CAN_DO_TIMEOUTs)
and the settings every worker has.

It owns the decorator and register() shared by Worker and AsyncWorker and
their argument checks. It must not do I/O.
"""
from .errors import GearmanError
from .servers import ServerPool


class FunctionRegistry:
    def __init__(self, servers="127.0.0.1:4730", *, concurrency=1, client_id=None,
                 spool_threshold=64 << 20, connect_timeout=5.0, spool_dir=None):
        if not isinstance(concurrency, int) or concurrency < 1:
            raise GearmanError("worker concurrency must be a positive integer")
        self.functions: dict[str, tuple] = {}
        self.pool = ServerPool(servers)
        self.concurrency = concurrency
        self.client_id = client_id
        self.spool_threshold = spool_threshold
        self.connect_timeout = connect_timeout
        self.spool_dir = spool_dir
        self._stopping = False
        self._running = 0
        self._rr = 0

    def function(self, name: str, timeout: float | None = None):
        """Decorator: @worker.function("name", timeout=seconds)."""
        def decorate(fn):
            self.register(name, fn, timeout)
            return fn
        return decorate

    def register(self, name: str, fn, timeout: float | None = None) -> None:
        if not isinstance(name, str) or not name or "\0" in name:
            raise GearmanError(f"function name must be a non-empty string without "
                               f"NUL, not {name!r}")
        if not callable(fn):
            raise GearmanError(f"{name}: {fn!r} is not callable")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise GearmanError(f"{name}: timeout must be a positive number of seconds")
        self.functions[name] = (fn, timeout)

    def timeouts(self) -> dict:
        return {name: timeout for name, (_, timeout) in self.functions.items()}

    def lookup(self, name: str):
        entry = self.functions.get(name)
        return entry[0] if entry else None
