"""`mpgearman stat` against real servers (mpgearman and Debian's gearmand):
--json after a known workload, the text view, --watch, the Nagios check
exit codes, and an unreachable server."""
import signal
import socket
import subprocess
import sys
import time

import orjson
import pytest

import statload
from mpgearman import native
from statload import ENV, free_port
from gearproto import PacketType as T
from gearproto import wait_for


def stat(server_address, *args, timeout=30):
    return subprocess.run([sys.executable, "-m", "mpgearman", "stat", "-s", server_address,
                           *args], capture_output=True, text=True, timeout=timeout, env=ENV)


def test_json_after_a_known_workload(server, spawn, unique_name):
    wl = statload.run(server, spawn, unique_name)
    try:
        run = stat(server.address, "--json", "--interval", "0.3")
    finally:
        wl.close()
    assert run.returncode == 0, run.stderr
    doc = orjson.loads(run.stdout)
    assert doc["server"] == server.address
    assert doc["kind"] == server.kind
    got = {name: {"queued": f["queued"], **f["queued_by_priority"], "running": f["running"],
                  "workers": f["workers"]} for name, f in doc["functions"].items()}
    want = {name: {"queued": f["high"] + f["normal"] + f["low"],
                   **{k: f[k] for k in ("high", "normal", "low", "running", "workers")}}
            for name, f in wl.expected().items()}
    assert got == want
    oldest = doc["totals"].pop("oldest_age_seconds", None)
    assert oldest is None if server.kind == "gearmand" else 0 < oldest < 30
    totals = {"functions": 3, "queued": 6, "running": 1, "workers": 2,
              "queued_by_priority": {"high": 0, "normal": 2, "low": 4}}
    if server.kind == "mpgearman":       # epoch jobs apart; gearmand cannot tell
        totals["scheduled"] = 0
    assert doc["totals"] == totals
    assert None not in doc["totals"].values()
    if server.kind == "gearmand":
        assert doc["jobs"] is doc["rates"] is doc["processes"] is doc["uptime_seconds"] is None
        assert doc["implementation"] is doc["core"] is None
        return
    assert doc["implementation"] == native.IMPLEMENTATION
    assert doc["core"] == native.core_for("second")     # the default durability
    assert doc["jobs"] == {"submitted": 28, "completed": 18, "failed": 2, "exceptions": 1,
                           "requeued": 1}
    # Nothing happened between the two samples.
    assert doc["rates"] == dict.fromkeys(doc["jobs"], 0.0)
    assert 0.25 < doc["interval_seconds"] < 5
    assert doc["connections"]["accepted"] == statload.CONNECTIONS_OPENED + 1   # + stat's own
    roles = [(p["role"], p["index"]) for p in doc["processes"]]
    assert roles == [("supervisor", 0), ("coordinator", 0), ("acceptor", 0), ("acceptor", 1)]
    assert {p["pid"] for p in doc["processes"]} == server.pids()
    assert all(p["rss_bytes"] > 0 and p["cpu_percent"] >= 0 for p in doc["processes"])


def test_rates_come_from_two_samples(mpgearman_server, fname):
    """Jobs submitted while stat waits between its samples show as a rate."""
    with mpgearman_server.connect() as client:
        proc = subprocess.Popen([sys.executable, "-m", "mpgearman", "stat", "-s",
                                 mpgearman_server.address, "--json", "--interval", "1.5"],
                                stdout=subprocess.PIPE, env=ENV)
        # stat takes its first sample as soon as it connects: once its
        # connection shows, what is submitted falls between its two samples.
        wait_for(lambda: mpgearman_server.admin("workers").count(b"\n") >= 4, 15, 0.02,
                 "stat's connection")
        time.sleep(0.2)
        for i in range(30):
            client.submit(T.SUBMIT_JOB_BG, fname.encode(), b"", b"%d" % i)
        out, _ = proc.communicate(timeout=30)
    doc = orjson.loads(out)
    assert doc["jobs"]["submitted"] == 30
    assert doc["rates"]["submitted"] == pytest.approx(30 / doc["interval_seconds"], rel=0.01)


def test_text_view(server, fname):
    server.admin(f"create function {fname}\r\n")      # CRLF: gearmand eats a byte of LF lines
    run = stat(server.address, "--interval", "0")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"{server.kind} ")
    table = [line.split() for line in lines if line.startswith((fname, "FUNCTION", "TOTAL"))]
    if server.kind == "gearmand":
        assert table == [["FUNCTION", "QUEUED", "HIGH", "NORMAL", "LOW", "RUNNING", "WORKERS"],
                         [fname, "0", "0", "0", "0", "0", "0"],
                         ["TOTAL", "(1)", "0", "0", "0", "0", "0", "0"]]
    else:   # epoch jobs apart; busy and idle workers, oldest queued job, wait and run p95
        assert table == [["FUNCTION", "QUEUED", "HIGH", "NORMAL", "LOW", "SCHEDULED", "RUNNING",
                          "WORKERS", "BUSY", "IDLE", "OLDEST", "WAIT95", "RUN95"],
                         [fname, "0", "0", "0", "0", "0", "0", "0", "0", "0", "-", "-", "-"],
                         ["TOTAL", "(1)", "0", "0", "0", "0", "0", "0", "0", "-"]]
    assert ("PROCESS" in run.stdout) == (server.kind == "mpgearman")


def test_watch_refreshes_until_ctrl_c(mpgearman_server, spawn):
    proc = spawn([sys.executable, "-m", "mpgearman", "stat", "-s", mpgearman_server.address,
                  "--watch", "0.2"], env=ENV)
    wait_for(lambda: proc.out_path.read_bytes().count(b"\x1b[H\x1b[2J") >= 2, 15, 0.05,
             "two refreshes")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    assert b"Traceback" not in proc.err_path.read_bytes()
    frames = proc.out_path.read_bytes().split(b"\x1b[H\x1b[2J")[1:]
    assert b"jobs/s over" not in frames[0] and b"jobs/s over" in frames[1]


CHECKS = [
    # (options, exit status, state word)
    (["--warn-queued", "5", "--crit-queued", "10"], 0, "OK"),
    (["--warn-queued", "1", "--crit-queued", "10"], 1, "WARNING"),
    (["--warn-queued", "1", "--crit-queued", "2"], 2, "CRITICAL"),
    (["--warn-workers-below", "1"], 1, "WARNING"),
    (["--crit-workers-below", "1", "--warn-queued", "0"], 2, "CRITICAL"),
]


@pytest.mark.parametrize("options,status,word", CHECKS, ids=[c[2] + str(i)
                                                                for i, c in enumerate(CHECKS)])
def test_nagios_check(server, fname, options, status, word):
    with server.connect() as client:
        for i in range(3):
            client.submit(T.SUBMIT_JOB_BG, fname.encode(), b"", b"%d" % i)
        run = stat(server.address, "--function", fname, *options)
    assert run.returncode == status, run.stdout + run.stderr
    line, = run.stdout.splitlines()
    assert line.startswith(f"MPGEARMAN {word} - function {fname}: 3 jobs queued, 0 workers")
    assert "| queued=3;" in line and " workers=0;" in line


def test_nagios_totals_count_worker_connections(server, fname):
    with server.connect() as worker:
        for suffix in ("a", "b"):
            worker.send_packet(T.CAN_DO, (fname + suffix).encode())
        server.wait_workers(fname + "b")
        run = stat(server.address, "--warn-workers-below", "2", "--crit-workers-below", "1")
    assert run.returncode == 1, run.stdout
    assert run.stdout.startswith("MPGEARMAN WARNING - 0 jobs queued, 1 workers (workers < 2)")
    assert run.stdout.rstrip().endswith("| queued=0;;;0 workers=1;2:;1:;0")


def test_unreachable_server():
    port = free_port()
    run = stat(f"127.0.0.1:{port}")
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == f"mpgearman: error: cannot connect to 127.0.0.1:{port}: " \
                         f"Connection refused\n"
    run = stat(f"127.0.0.1:{port}", "--crit-queued", "5")
    assert (run.returncode, run.stderr) == (3, "")
    assert run.stdout == f"MPGEARMAN UNKNOWN - cannot connect to 127.0.0.1:{port}: " \
                         f"Connection refused\n"


def test_bad_options_are_one_line_errors():
    run = stat("127.0.0.1:notaport")
    assert run.returncode == 2 and "the port must be a number" in run.stderr
    run = stat("127.0.0.1:1", "--json", "--watch")
    assert run.returncode == 2 and "do not combine" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_server_that_never_answers_is_bounded_by_timeout():
    with socket.socket() as silent:           # accepts (in the kernel), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        started = time.monotonic()
        run = stat(address, "--timeout", "0.5")
        assert run.returncode == 1
        assert run.stderr == f"mpgearman: error: {address} did not answer within 0.5 s\n"
        run = stat(address, "--timeout", "0.5", "--warn-queued", "1")
        assert (run.returncode, run.stdout) == (
            3, f"MPGEARMAN UNKNOWN - {address} did not answer within 0.5 s\n")
        assert time.monotonic() - started < 10


def test_a_name_with_a_newline_breaks_no_listing(server, fname):
    """gearmand prints names raw, so a newline in one cuts its `status`
    line in two: stat reads the rest and reports the broken line. mpgearman
    shows the name as ...\\x0a... and `drop function` takes that spelling."""
    odd = fname.encode() + b"\nbroken"
    with server.connect() as worker, server.connect() as client:
        worker.send_packet(T.CAN_DO, odd)
        for i in range(3):
            client.submit(T.SUBMIT_JOB_BG, fname.encode() + b"ok", b"", b"%d" % i)
        wait_for(lambda: b"broken" in server.admin("status"), 10, 0.05, "the odd function")
        run = stat(server.address, "--json", "--interval", "0")
        check = stat(server.address, "--function", fname + "ok", "--warn-queued", "2")
    assert run.returncode == 0, run.stderr
    doc = orjson.loads(run.stdout)
    assert doc["functions"][fname + "ok"]["queued"] == 3
    assert check.returncode == 1, check.stdout + check.stderr
    assert check.stdout.startswith(f"MPGEARMAN WARNING - function {fname}ok: 3 jobs queued")
    if server.kind == "gearmand":
        assert {"command": "status", "line": fname} in doc["unreadable"]
        assert "unreadable line" in check.stdout
        return
    assert doc["unreadable"] == [] and "unreadable" not in check.stdout
    shown = fname + "\\x0abroken"
    assert doc["functions"][shown]["workers"] == 1
    wait_for(lambda: server.status()[shown][2] == 0, 10, 0.05, "the worker to leave")
    assert server.admin(f"drop function {shown}\r\n") == b"OK\r\n"
    assert shown not in server.status()


def test_several_servers_from_the_environment(server_factory, fname):
    """MPGEARMAN_SERVERS with a comma list, as the client commands take it:
    one table per server, a JSON list, a check on the sums."""
    one, two = server_factory("mpgearman"), server_factory("gearmand")
    for srv in (one, two):
        with srv.connect() as client:
            client.submit(T.SUBMIT_JOB_BG, fname.encode(), b"", b"x")
    env = dict(ENV, MPGEARMAN_SERVERS=f"{one.address},{two.address}")
    run = subprocess.run([sys.executable, "-m", "mpgearman", "stat", "--interval", "0"],
                         capture_output=True, text=True, timeout=30, env=env)
    assert run.returncode == 0, run.stderr
    assert "mpgearman " in run.stdout and f" on {one.address}" in run.stdout
    assert "gearmand " in run.stdout and f" on {two.address}" in run.stdout
    run = subprocess.run([sys.executable, "-m", "mpgearman", "stat", "--json"],
                         capture_output=True, text=True, timeout=30, env=env)
    docs = orjson.loads(run.stdout)
    assert [d["server"] for d in docs] == [one.address, two.address]
    assert [d["functions"][fname]["queued"] for d in docs] == [1, 1]
    run = subprocess.run([sys.executable, "-m", "mpgearman", "stat", "--function", fname,
                          "--warn-queued", "1"], capture_output=True, text=True,
                         timeout=30, env=env)
    assert run.returncode == 1, run.stdout
    assert run.stdout.startswith(f"MPGEARMAN WARNING - function {fname}: 2 jobs queued")


def test_a_dead_server_among_several(mpgearman_server):
    dead = f"127.0.0.1:{free_port()}"
    run = stat(f"{mpgearman_server.address},{dead}", "--interval", "0")
    assert run.returncode == 1
    assert f" on {mpgearman_server.address}" in run.stdout
    assert run.stderr == f"mpgearman: error: cannot connect to {dead}: Connection refused\n"
    run = stat(f"{mpgearman_server.address},{dead}", "--crit-queued", "5")
    assert (run.returncode, run.stdout) == (
        3, f"MPGEARMAN UNKNOWN - cannot connect to {dead}: Connection refused\n")


def test_an_unknown_function_is_unknown(server, fname):
    run = stat(server.address, "--function", fname, "--crit-queued", "5")
    assert (run.returncode, run.stdout) == (
        3, f"MPGEARMAN UNKNOWN - function {fname} is unknown to {server.address}\n")


def test_scheduled_jobs_are_shown_apart_from_queued_ones(mpgearman_server, fname):
    with mpgearman_server.connect() as client:
        for when in (b"%d" % (time.time() + 3600), b"0"):      # 0: now
            client.send_packet(T.SUBMIT_JOB_EPOCH, fname.encode(), b"", when, b"x")
            client.expect(T.JOB_CREATED)
        run = stat(mpgearman_server.address, "--json", "--interval", "0")
        fn = orjson.loads(run.stdout)["functions"][fname]
        assert (fn["queued"], fn["queued_by_priority"]["normal"], fn["scheduled"]) == (1, 1, 1)
        run = stat(mpgearman_server.address, "--interval", "0")
    row, = [line.split() for line in run.stdout.splitlines() if line.startswith(fname)]
    assert row[:8] == [fname, "1", "0", "1", "0", "1", "0", "0"]


def test_nagios_check_on_the_oldest_queued_job(server, fname):
    with server.connect() as client:
        client.submit(T.SUBMIT_JOB_BG, fname.encode(), b"", b"x")
        time.sleep(1.2)
        late = stat(server.address, "--function", fname, "--warn-oldest", "0.5",
                    "--crit-oldest", "1")
        fine = stat(server.address, "--warn-oldest", "60")
    if server.kind == "gearmand":
        assert late.returncode == fine.returncode == 3
        assert late.stdout.startswith("MPGEARMAN UNKNOWN - gearmand does not tell")
        return
    assert late.returncode == 2, late.stdout + late.stderr
    assert late.stdout.startswith(f"MPGEARMAN CRITICAL - function {fname}: 1 jobs queued")
    assert "(oldest job waited > 1 s)" in late.stdout and " oldest=1." in late.stdout
    assert fine.returncode == 0 and fine.stdout.startswith("MPGEARMAN OK - ")
