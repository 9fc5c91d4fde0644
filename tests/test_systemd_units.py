"""The systemd side without a server: the unit files pass systemd-analyze,
the example config is valid and shows the real defaults, every setting is
classified for reloads, sd_notify datagrams and the watchdog decision."""
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mpgearman import config, reload, systemd

UNITS = Path(__file__).resolve().parents[1] / "systemd"


def test_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify insists ExecStart names an existing executable: point the copy
    # at this Python, with the same arguments.
    service = (UNITS / "mpgearman.service").read_text()
    assert "\nExecStart=/opt/mpgearman/bin/mpgearman serve " in service
    (tmp_path / "mpgearman.service").write_text(
        service.replace("/opt/mpgearman/bin/mpgearman", f"{sys.executable} -m mpgearman"))
    shutil.copy(UNITS / "mpgearman.socket", tmp_path)
    run = subprocess.run([analyze, "verify", str(tmp_path / "mpgearman.service"),
                          str(tmp_path / "mpgearman.socket")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "", run.stderr      # no unknown key, no warning


def _unit_settings(name):
    pairs = [line.split("=", 1) for line in (UNITS / name).read_text().splitlines()
             if re.match(r"^[A-Z]\w*=", line)]
    settings = {}
    for key, value in pairs:
        settings.setdefault(key, []).append(value)
    return settings


def test_service_has_the_settings_the_server_relies_on():
    s = _unit_settings("mpgearman.service")
    for key, value in {"Type": "notify", "NotifyAccess": "main", "KillMode": "mixed",
                       "ExecReload": "/bin/kill -HUP $MAINPID", "DynamicUser": "yes",
                       "CacheDirectory": "mpgearman", "Restart": "on-failure",
                       "MemoryDenyWriteExecute": "yes", "ProtectSystem": "strict",
                       "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX"}.items():
        assert s[key] == [value], key
    assert int(s["WatchdogSec"][0]) >= 3     # idle loops beat once a second
    assert int(s["LimitNOFILE"][0]) >= 4096
    assert s["CapabilityBoundingSet"] == [""]
    assert "@system-service" in s["SystemCallFilter"]
    sock = _unit_settings("mpgearman.socket")
    assert sock["ListenStream"] == ["4730"] and sock["BindIPv6Only"] == ["both"]


def test_example_config_is_valid_and_shows_the_defaults(tmp_path):
    text = (UNITS / "mpgearman.toml").read_text()
    assert config.tomllib.loads(text) == {}                 # everything commented out
    uncommented = tmp_path / "all.toml"
    uncommented.write_text(re.sub(r"(?m)^#([a-z])", r"\1", text))
    loaded = config.load(str(uncommented), {})
    keys = set(config.tomllib.loads(uncommented.read_text()))
    assert keys == {config.option_name(f) for f in config.FIELDS}
    assert loaded.replace(spool_dir="") == config.Config().replace(spool_dir="")


def test_every_setting_is_classified_for_reload():
    fields = set(config.FIELDS)
    assert set(reload.LIVE) | set(reload.RESTART) == fields
    assert not set(reload.LIVE) & set(reload.RESTART)
    text = (UNITS / "mpgearman.toml").read_text()
    for field in reload.RESTART:         # the example file tells the same story
        assert config.option_name(field) in text.split("need a restart")[1].split("#\n")[0]


def test_reload_compare_and_the_control_line_round_trip():
    old = config.Config()
    new = old.replace(job_retries=3, round_robin=True, port=4731, max_queued_output=2 << 20)
    live, fixed = reload.compare(old, new)
    assert live == {"job_retries": 3, "round_robin": True, "max_queued_output": 2 << 20}
    assert fixed == [("port", 4730, 4731)]
    words = reload.encode(new, reload.COORDINATOR)
    assert all(" " not in w for w in words)
    assert reload.decode(words) == {f: getattr(new, f) for f in reload.COORDINATOR}


@pytest.mark.parametrize("abstract", [False, True])
def test_notifier_writes_datagrams(tmp_path, abstract):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"mpgearman-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name)
        env = {"NOTIFY_SOCKET": "@" + name}
    else:
        sock.bind(str(tmp_path / "notify"))
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify")}
    sock.settimeout(5)
    n = systemd.Notifier(env)
    n.ready("2 acceptors")
    n.ping()
    n.reloading()
    n.stopping()
    got = [sock.recv(4096) for _ in range(4)]
    assert got[0] == b"READY=1\nSTATUS=2 acceptors"
    assert got[1] == b"WATCHDOG=1"
    assert re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=\d+", got[2])
    assert got[3] == b"STOPPING=1"
    n.close()
    sock.close()


def test_notifier_without_systemd_and_with_a_vanished_socket(tmp_path, caplog):
    quiet = systemd.Notifier({})
    assert not quiet.enabled
    quiet.ready("x")                                  # no socket: nothing happens
    gone = systemd.Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    gone.ping()
    gone.ping()
    assert len([r for r in caplog.records if "cannot notify" in r.getMessage()]) == 1


def test_watchdog_period():
    assert systemd.watchdog_period({}) is None
    assert systemd.watchdog_period({"WATCHDOG_USEC": "10000000"}) == 10.0
    assert systemd.watchdog_period({"WATCHDOG_USEC": "0"}) is None
    assert systemd.watchdog_period({"WATCHDOG_USEC": "3000000",
                                    "WATCHDOG_PID": str(os.getpid() + 1)}) is None


class FakeNotifier:
    def __init__(self, watchdog):
        self.watchdog = watchdog
        self.sent = []

    def ping(self):
        self.sent.append("WATCHDOG")

    def status(self, text):
        self.sent.append("STATUS " + text)

    def ready(self, text):
        self.sent.append("READY " + text)


def test_health_pings_only_while_every_child_beats():
    now = [100.0]
    notifier = FakeNotifier(watchdog=4.0)
    health = systemd.Health(notifier, clock=lambda: now[0])
    health.started(1)
    health.started(2)
    health.ready(2)
    assert notifier.sent == ["READY acceptors: 2, connections: 0, queued jobs: 0, workers: 0"]
    assert health.tick(2) == 2.0 and notifier.sent[-1] == "WATCHDOG"
    now[0] += 2.0
    health.beat(1, ["3", "40", "5"])
    health.beat(2, [])
    health.tick(2)
    assert notifier.sent[-2:] == ["STATUS acceptors: 2, connections: 3, queued jobs: 40, workers: 5",
                                  "WATCHDOG"]
    now[0] += 2.0
    health.beat(1, ["3", "40", "5"])        # pid 2 is 2.0 s old: still fresh enough
    health.tick(2)
    pings = notifier.sent.count("WATCHDOG")
    now[0] += 2.1                           # pid 1 beats, pid 2 (hung) does not
    health.beat(1, ["3", "40", "5"])
    health.tick(2)
    assert notifier.sent.count("WATCHDOG") == pings
    health.gone(2)                          # the hung process is gone
    now[0] += 2.0
    health.beat(1, ["3", "40", "5"])
    health.tick(2)
    assert notifier.sent.count("WATCHDOG") == pings + 1


def test_adopt_accepts_only_listening_tcp_sockets():
    listening = socket.create_server(("127.0.0.1", 0))
    adopted = systemd._adopt(os.dup(listening.fileno()), "gearman")
    assert adopted.getsockname() == listening.getsockname()
    adopted.close()
    idle = socket.socket()
    fd = os.dup(idle.fileno())
    with pytest.raises(systemd.ActivationError, match=r"descriptor \d+ \(x\) .* not a listening"):
        systemd._adopt(fd, "x")
    os.close(fd)
    for s in (listening, idle):
        s.close()


def test_listen_fds_for_another_process_are_ignored():
    env = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}
    assert systemd.listen_sockets(env) == []
    assert "LISTEN_FDS" not in env
    with pytest.raises(systemd.ActivationError):
        systemd.listen_sockets({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "x"})
