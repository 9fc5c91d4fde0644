"""CAN_DO_TIMEOUT from Worker.function(timeout=...): when a worker holds a
job longer than its timeout the server requeues it, and another worker
finishes it; the slow worker's late result is refused without harm."""
import threading

from clientlib import worker_thread
from mpgearman import Client


def test_timed_out_job_is_finished_by_another_worker(server, fname):
    release, started = threading.Event(), threading.Event()

    def stuck(job):
        started.set()
        release.wait(10)
        return b"late"
    with worker_thread(server.address, {fname: (stuck, 1.0)}, [(server, fname)]), \
            Client(server.address, timeout=20) as client:
        job = client.submit(fname, b"x")
        assert started.wait(10)   # the stuck worker has it now
        with worker_thread(server.address, {fname: lambda job: b"rescued"}):
            try:
                assert job.result(timeout=10) == b"rescued"
            finally:
                release.set()
