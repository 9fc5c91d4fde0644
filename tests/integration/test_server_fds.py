"""Out of file descriptors: an acceptor stops accepting for a moment instead
of spinning, keeps serving the connections it has, and accepts again once
descriptors are free."""
import os
import re
import subprocess
import sys
import time

import psutil

from conftest import REPO_ROOT, kill_tree
from gearproto import Conn, PacketType as T, wait_for

LIMIT = 48
LAUNCH = ("import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, ({0}, {0})); "
          "from mpgearman.cli import main; sys.argv[0] = 'mpgearman'; main()")


def test_running_out_of_descriptors(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCH.format(LIMIT), "serve",
                                 "--listen", "127.0.0.1", "--port", "0", "--acceptors", "1",
                                 "--spool-dir", str(tmp_path / "spool")],
                                stdout=o, stderr=e, env=env, start_new_session=True)
    try:
        port = int(wait_for(lambda: re.search(r":(\d+)$", out.read_text().strip()), 20,
                            message="the ready line").group(1))
        first = Conn("127.0.0.1", port)
        assert first.call(T.ECHO_REQ, b"a").payload == b"a"
        many = []
        for _ in range(LIMIT + 10):       # more than the acceptor can hold
            many.append(Conn("127.0.0.1", port))
        wait_for(lambda: "pausing new connections" in err.read_text(), 10,
                 message="the acceptor to notice")
        acceptor = [p for p in psutil.Process(proc.pid).children() if "acceptor" in p.name()][0]
        cpu0 = acceptor.cpu_times()
        time.sleep(1.0)
        cpu1 = acceptor.cpu_times()
        assert (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system) < 0.3, "spinning"
        assert first.call(T.ECHO_REQ, b"b").payload == b"b"     # still served
        for c in many:
            c.close()
        with Conn("127.0.0.1", port) as late:                   # accepted again
            assert late.call(T.ECHO_REQ, b"c", timeout=10).payload == b"c"
        first.close()
    finally:
        kill_tree(proc, 10)
