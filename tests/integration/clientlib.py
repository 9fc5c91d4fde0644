"""Helpers for the client and worker library tests: a Worker running in a
thread of the test process, stopped (and joined, bounded) at the end."""
import contextlib
import threading

from mpgearman import Worker


@contextlib.contextmanager
def worker_thread(servers, functions, wait_on=None, **worker_kwargs):
    """Run a Worker offering `functions` ({name: fn, (fn, timeout) or a
    dict of register()'s arguments}).
    wait_on: [(server, function)] to wait for until registered."""
    worker = Worker(servers, **worker_kwargs)
    for name, fn in functions.items():
        if isinstance(fn, dict):
            worker.register(name, **fn)
            continue
        fn, timeout = fn if isinstance(fn, tuple) else (fn, None)
        worker.register(name, fn, timeout=timeout)
    errors = []

    def run():
        try:
            worker.run()
        except BaseException as exc:   # noqa: BLE001 - reported by the test
            errors.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        for server, name in wait_on or ():
            server.wait_workers(name)
        yield worker
    finally:
        worker.stop()
        thread.join(15)
        if thread.is_alive():
            import faulthandler, sys
            faulthandler.dump_traceback(sys.stderr)
        assert not thread.is_alive(), f"worker did not stop: {_describe(worker)}"
        assert not errors, errors


def _describe(worker) -> str:
    conns = getattr(worker, "_conns", {})
    states = {a: (c.session.state if c.session else "closed", c.pending is not None,
                  c.session.has_output if c.session else None) for a, c in conns.items()}
    return f"running={worker._running} conns={states}"
