#!/usr/bin/env python3
"""CPU per job of a Python Gearman client and worker: mpgearman's library
against pygearman 0.2.6, on the same server.

One worker process and one client process doing N blocking calls one after
the other (echo of a small payload); each process measures its own CPU time
(user + system, getrusage) over the jobs only, so start-up and imports are
not counted. The server is Debian's gearmand (started on a free loopback
port) unless --server names one.

    python bench/client_cpu.py                     # 3 runs of 5000 jobs each
    python bench/client_cpu.py --jobs 20000 --runs 5 --server 127.0.0.1:4730
    python bench/client_cpu.py --profile client    # cProfile of our client
    python bench/client_cpu.py --profile worker    # cProfile of our worker

pygearman is looked for where tests/run installs it
(~/.cache/mpgearman-tests/pylibs/pygearman, or $MPGEARMAN_PYLIBS/pygearman).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYLIBS = Path(os.environ.get("MPGEARMAN_PYLIBS")
              or Path.home() / ".cache" / "mpgearman-tests" / "pylibs")
PAYLOAD = b"x" * 64


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the measured processes ---------------------------------------------------

def our_worker(address: str, function: str, profile: bool = False) -> None:
    from mpgearman import Worker
    worker = Worker(address)
    worker.register(function, lambda job: job.data)
    started = cpu()
    print("ready", flush=True)
    if profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.runcall(worker.run)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    else:
        worker.run()                # until SIGTERM, which it handles itself
    print(json.dumps({"cpu": cpu() - started}), flush=True)


def our_client(address: str, function: str, jobs: int) -> dict[str, float]:
    from mpgearman import Client
    with Client(address, timeout=30) as client:
        client.call(function, PAYLOAD)              # connect, and warm up
        started, wall = cpu(), time.perf_counter()
        for _ in range(jobs):
            client.call(function, PAYLOAD)
        return {"cpu": cpu() - started, "wall": time.perf_counter() - wall}


def pg_worker(address: str, function: str) -> None:
    import gearman
    worker = gearman.GearmanWorker([address])
    worker.register_task(function.encode(), lambda _worker, job: job.data)
    report_at_exit()
    worker.work()


def pg_client(address: str, function: str, jobs: int) -> dict[str, float]:
    import gearman
    client = gearman.GearmanClient([address])
    # Without a poll_timeout pygearman 0.2.6 returns before the job completes.
    client.submit_job(function, PAYLOAD.decode(), poll_timeout=60)
    started, wall = cpu(), time.perf_counter()
    for _ in range(jobs):
        request = client.submit_job(function, PAYLOAD.decode(), poll_timeout=60)
        assert request.complete, request.state
    return {"cpu": cpu() - started, "wall": time.perf_counter() - wall}


def report_at_exit() -> None:
    """On SIGTERM: print the CPU used since registration on stdout, exit."""
    import signal
    started = cpu()

    def done(*_):
        print(json.dumps({"cpu": cpu() - started}), flush=True)
        os._exit(0)
    signal.signal(signal.SIGTERM, done)
    print("ready", flush=True)


ROLES = {("ours", "worker"): our_worker, ("ours", "client"): our_client,
         ("pygearman", "worker"): pg_worker, ("pygearman", "client"): pg_client}


def child_main(lib: str, role: str, address: str, function: str, jobs: str,
               profile: str | None) -> None:
    if role == "worker":
        if profile == "worker":
            our_worker(address, function, True)
        else:
            ROLES[lib, role](address, function)
        return
    if profile == "client":
        import cProfile
        import pstats
        prof = cProfile.Profile()
        result = prof.runcall(ROLES[lib, role], address, function, int(jobs))
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    else:
        result = ROLES[lib, role](address, function, int(jobs))
    print(json.dumps(result), flush=True)


# -- the driver ---------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gearmand(tmp: Path) -> tuple[subprocess.Popen, str]:
    gearmand = shutil.which("gearmand") or "/usr/sbin/gearmand"
    port = free_port()
    proc = subprocess.Popen([gearmand, "--listen", "127.0.0.1", "--port", str(port),
                             "--log-file", str(tmp / "gearmand.log"), "--verbose", "ERROR"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("gearmand did not start")


def env_for(lib: str) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO)] if lib == "ours" else [str(PYLIBS / "pygearman")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    return env


def one_run(lib: str, address: str, jobs: int, profile: str) -> dict[str, float]:
    function = f"cpu_{uuid.uuid4().hex[:8]}"
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    worker = subprocess.Popen(me + [lib, "worker", address, function, "0", profile],
                              stdout=subprocess.PIPE, env=env_for(lib), text=True)
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        time.sleep(0.3)                 # registered (CAN_DO is sent on connect)
        client = subprocess.run(me + [lib, "client", address, function, str(jobs),
                                      profile],
                                capture_output=True, text=True, env=env_for(lib),
                                timeout=600)
        if client.returncode != 0:
            sys.exit(f"{lib} client failed:\n{client.stderr}")
        if profile == "client":
            print(client.stderr, file=sys.stderr)
        result = json.loads(client.stdout.splitlines()[-1])
        worker.terminate()
        out, _ = worker.communicate(timeout=10)
        result["worker_cpu"] = json.loads(out.splitlines()[-1])["cpu"]
        return result
    finally:
        worker.kill()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(*sys.argv[2:8])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server", help="HOST:PORT (default: start gearmand)")
    parser.add_argument("--libs", default="ours,pygearman")
    parser.add_argument("--profile", choices=["client", "worker"],
                        help="print a cProfile of our client's calls or of our "
                             "worker's run() (one run)")
    args = parser.parse_args()
    libs = args.libs.split(",")
    if "pygearman" in libs and not any((PYLIBS / "pygearman").glob("*.dist-info")):
        sys.exit(f"pygearman is not installed in {PYLIBS / 'pygearman'} "
                 "(bash tests/run installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        server, address = (None, args.server) if args.server else start_gearmand(Path(tmp))
        try:
            if args.profile:
                one_run("ours", address, args.jobs, args.profile)
                return
            runs: dict[str, list[dict[str, float]]] = {lib: [] for lib in libs}
            for n in range(args.runs):
                for lib in libs:         # interleaved: drift hits both alike
                    r = one_run(lib, address, args.jobs, "")
                    runs[lib].append(r)
                    print(f"run {n + 1} {lib:10} {args.jobs / r['wall']:8.0f} calls/s  "
                          f"client {1e6 * r['cpu'] / args.jobs:6.1f} us/job  "
                          f"worker {1e6 * r['worker_cpu'] / args.jobs:6.1f} us/job",
                          flush=True)
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)
    print(f"\nmedians over {args.runs} runs of {args.jobs} blocking calls "
          f"({len(PAYLOAD)}-byte echo), server {'gearmand' if not args.server else address}:")
    for lib in libs:
        med = {k: statistics.median(r[k] for r in runs[lib]) for k in runs[lib][0]}
        print(f"  {lib:10} {args.jobs / med['wall']:8.0f} calls/s  "
              f"client {1e6 * med['cpu'] / args.jobs:6.1f} us/job  "
              f"worker {1e6 * med['worker_cpu'] / args.jobs:6.1f} us/job")


if __name__ == "__main__":
    main()
