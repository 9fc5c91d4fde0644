"""The service's exposure under `systemd-analyze security` (offline, so no
running systemd is needed) is lower than that of Debian 12's redis-server
unit (tests/data/redis-server.service, copied from redis-server
5:7.0.15-1~deb12u10), scored by the same systemd-analyze."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
UNIT = HERE.parent / "systemd" / "mpgearman.service"
REDIS = HERE / "data" / "redis-server.service"


def _exposure(analyze, unit: Path, cwd: Path) -> float:
    run = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(unit)],
                         capture_output=True, text=True, timeout=120, cwd=cwd)
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", run.stdout)
    if found is None and "offline" in run.stderr:
        pytest.skip("this systemd-analyze cannot assess units offline")
    assert found is not None, run.stdout + run.stderr
    return float(found.group(1))


@pytest.fixture
def analyze():
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed")
    return path


def test_the_service_is_stricter_than_debians_redis_server(analyze, tmp_path):
    ours = _exposure(analyze, UNIT, tmp_path)
    redis = _exposure(analyze, REDIS, tmp_path)
    assert ours < redis, (ours, redis)
    assert ours <= 1.1, ours


def test_the_service_takes_the_hardening_redis_has(analyze, tmp_path):
    """Each setting redis-server's unit has beyond ours then, here too."""
    text = UNIT.read_text()
    for line in ("PrivateUsers=yes", "PrivateMounts=yes", "NoExecPaths=/",
                 "SystemCallFilter=~@privileged @resources"):
        assert f"\n{line}\n" in text, line
    execpaths = re.search(r"(?m)^ExecPaths=(.*)$", text).group(1).split()
    assert "/opt/mpgearman" in execpaths and "/usr" in execpaths
