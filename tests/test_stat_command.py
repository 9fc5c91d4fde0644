"""`mpgearman stat` argument handling and --watch without a server: Nagios
rules for bad arguments, the server list, and the watch loop against a
fake probe."""
import io

import pytest
from click.testing import CliRunner

from mpgearman.cli import main
from mpgearman.stat import render, watch
from mpgearman.stat.probe import ProbeError


def run(*args, env=None):
    return CliRunner().invoke(main, ["stat", *args], env=env or {})


@pytest.mark.parametrize("args,says", [
    (["--warn-queued", "x"], "'x' is not a valid integer"),
    (["--crit-queued", "-1"], "--crit-queued"),
    (["--warn-queued", "5", "--crit-queued", "2"], "--warn-queued 5 is above --crit-queued 2"),
    (["--warn-workers-below", "1", "--crit-workers-below", "3"],
     "--warn-workers-below 1 is below --crit-workers-below 3"),
    (["--crit-queued=3", "--json"], "do not combine"),
    (["--crit-queued", "3", "--bogus"], "No such option"),
    (["-s", "h:x", "--crit-queued", "3"], "the port must be a number"),
    (["--function", "resize"], "--function goes with a threshold option"),
])
def test_bad_arguments_of_a_check_are_unknown(args, says):
    result = run(*args)
    assert result.exit_code == render.UNKNOWN, result.output
    line, = result.output.splitlines()
    assert line.startswith("MPGEARMAN UNKNOWN - bad arguments: ") and says in line, line


def test_bad_arguments_without_a_threshold_stay_usage_errors():
    result = run("--bogus")
    assert result.exit_code == 2 and "No such option" in result.output
    result = run("-s", "h:x")
    assert result.exit_code == 2 and "the port must be a number" in result.output


def test_equal_warning_and_critical_thresholds_are_accepted(monkeypatch):
    seen = []
    monkeypatch.setattr("mpgearman.stat._check",
                        lambda servers, *rest: seen.append(servers) or 0)
    result = run("--warn-queued", "3", "--crit-queued", "3", "--warn-workers-below", "2",
                 "--crit-workers-below", "2")
    assert result.exit_code == 0, result.output
    assert seen == [[("127.0.0.1", 4730)]]


def test_servers_come_as_the_client_commands_take_them(monkeypatch):
    seen = []
    monkeypatch.setattr("mpgearman.stat._show",
                        lambda servers, *rest: seen.append(servers))
    assert run("-s", "a:1,b:2", "-s", "[::1]:3").exit_code == 0
    assert run(env={"MPGEARMAN_SERVERS": "c:4 d"}).exit_code == 0
    assert seen == [[("a", 1), ("b", 2), ("::1", 3)], [("c", 4), ("d", 4730)]]


class FakeProbe:
    """take() for watch: servers named in `dead` do not answer."""

    def __init__(self, dead=()):
        self.dead, self.asked = set(dead), []

    def __call__(self, host, port, timeout, interval):
        self.asked.append(host)
        if host in self.dead:
            raise ProbeError(f"cannot connect to {host}:{port}: Connection refused")
        fns = {f"fn{i:02d}": {"queued": 1, "queued_by_priority": None, "running": 0,
                              "workers": 0} for i in range(30)}
        return f"{host}:{port}", {"at": 0.0, "functions": fns, "worker_connections": 0,
                                  "stats": None, "version": "1.1.20"}, None


def _watch(monkeypatch, probe, servers, frames, rows=12, every=1.0):
    """Run the watch for `frames` frames on a fake clock; the frames."""
    monkeypatch.setattr(watch, "take", probe)
    now = [0.0]
    out = io.StringIO()

    def sleep(seconds):
        now[0] += seconds
        if out.getvalue().count(watch.CLEAR) >= frames:
            raise KeyboardInterrupt

    watch.run(servers, 1.0, every, out=out, rows=rows, clock=lambda: now[0], sleep=sleep)
    return out.getvalue().split(watch.CLEAR)[1:]


def test_watch_keeps_its_header_in_a_short_terminal(monkeypatch):
    frames = _watch(monkeypatch, FakeProbe(), [("a", 1)], 2, rows=12)
    for text in frames:
        lines = text.rstrip("\n").split("\n")
        assert len(lines) <= 12
        assert lines[0] == "gearmand 1.1.20 on a:1" and lines[2].startswith("FUNCTION")
        assert lines[-1] == "every 1 s, Ctrl-C to quit"


def test_watch_into_a_file_is_not_cut(monkeypatch):
    """No terminal, no height: every function row is written."""
    monkeypatch.setattr(watch, "take", FakeProbe())
    out = io.StringIO()

    def sleep(seconds):
        raise KeyboardInterrupt

    watch.run([("a", 1)], 1.0, 1.0, out=out, sleep=sleep)
    assert "fn29" in out.getvalue() and "more functions" not in out.getvalue()


def test_watch_backs_off_from_a_server_that_died(monkeypatch):
    probe = FakeProbe(dead={"b"})
    frames = _watch(monkeypatch, probe, [("a", 1), ("b", 2)], 8, rows=60)
    # a is asked at every refresh, b after 2, 4, 8 ... seconds
    assert probe.asked.count("a") == 8 and probe.asked.count("b") == 3
    assert "not answering 1 time in a row; asking again in 2 s" in frames[0]
    assert "not answering 3 times in a row; asking again in 8 s" in frames[-1]
    assert "gearmand 1.1.20 on a:1" in frames[-1]


def test_watch_of_servers_that_never_answered_raises(monkeypatch):
    with pytest.raises(ProbeError, match="cannot connect to b:2"):
        _watch(monkeypatch, FakeProbe(dead={"b"}), [("b", 2)], 3)
