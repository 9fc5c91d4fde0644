"""`mpgearman serve` options: every one maps to exactly one Config field,
and bad values are one clear error, not a traceback."""
import dataclasses
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mpgearman import cli
from mpgearman.config import Config


def test_every_option_is_a_config_field_and_back():
    # --config says where the other options come from; it is not one itself.
    options = {p.name for p in cli.serve.params} - {"config_file"}
    fields = {f.name for f in dataclasses.fields(Config)}
    assert options == fields


def test_defaults_agree_with_config():
    d = Config()
    for p in cli.serve.params:
        if p.name not in ("spool_dir", "config_file"):
            assert p.default == getattr(d, p.name), p.name


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "70000 is not in the range"),
    (["--port", "abc"], "'abc' is not a valid integer"),
    (["--acceptors", "-1"], "-1 is not in the range"),
    (["--max-payload", "5G"], "--max-payload must be between"),
    (["--max-payload", "lots"], "is not a size"),
    (["--ring-size", "100000"], "power of two"),
    (["--spool-threshold", "1M", "--ring-size", "1M"], "--spool-threshold must be between"),
    (["--log-level", "loud"], "'loud' is not one of"),
    (["--bogus"], "No such option"),
])
def test_bad_values_are_one_clear_error(args, message):
    result = CliRunner().invoke(cli.main, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_sizes_accept_units():
    assert cli.Size().convert("64K", None, None) == 65536
    assert cli.Size().convert("4g", None, None) == 4 << 30
    assert cli.Size().convert("1MiB", None, None) == 1 << 20


def test_a_port_in_use_is_a_clear_start_up_error(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "mpgearman", "serve", "--listen", "127.0.0.1",
                               "--port", str(port), "--spool-dir", str(tmp_path)],
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert f"cannot start: port {port} is already in use on 127.0.0.1" in proc.stderr
    assert "Traceback" not in proc.stderr
