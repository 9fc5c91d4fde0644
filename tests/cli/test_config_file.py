"""The config file: its keys are the serve options; the command line wins
over it and it wins over the defaults; any mistake is one clear error."""
import pytest
from click.testing import CliRunner

from mpgearman import cli, config, supervisor
from mpgearman.config import Config, ConfigError


def write(tmp_path, text):
    path = tmp_path / "mpgearman.toml"
    path.write_text(text)
    return str(path)


def test_file_values_override_defaults(tmp_path):
    path = write(tmp_path, 'port = 4999\njob-retries = 3\nround-robin = true\n'
                           'max-payload = "1M"\nspool-threshold = 131072\nlisten = "127.0.0.1"\n')
    c = config.load(path, {})
    assert (c.port, c.job_retries, c.round_robin) == (4999, 3, True)
    assert (c.max_payload, c.spool_threshold, c.listen) == (1 << 20, 131072, "127.0.0.1")
    assert c.acceptors == Config().acceptors


def test_overrides_win_over_the_file(tmp_path):
    path = write(tmp_path, "port = 4999\nworker-wakeup = 2\n")
    c = config.load(path, {"port": 5000})
    assert (c.port, c.worker_wakeup) == (5000, 2)


def test_no_file_is_the_defaults_and_the_overrides():
    assert config.load(None, {"job_retries": 7}) == Config(job_retries=7)


@pytest.mark.parametrize("text, message", [
    ("prot = 4730\n", "unknown key 'prot' (did you mean port?)"),
    ("job_retries = 3\n", "unknown key 'job_retries' (did you mean job-retries?)"),
    ("zzz = 1\n", "unknown key 'zzz'; known keys: listen, port,"),
    ("port = \"4730\"\n", "port must be a whole number, not '4730'"),
    ("port = 70000\n", "port (config file"),
    ("round-robin = 1\n", "round-robin must be true or false, not 1"),
    ("listen = 0\n", "listen must be a string, not 0"),
    ("max-payload = \"lots\"\n", "max-payload = 'lots' is not a size"),
    ("ring-size = 100000\n", "must be a power of two >= 64K, not 100000"),
    ("log-level = \"loud\"\n", "log-level (config file"),
    ("port = \n", "Invalid value"),
    ("[serve]\nport = 1\n", "unknown key 'serve'"),
])
def test_bad_files_are_one_clear_error(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path, {})
    assert message in str(info.value)
    assert path in str(info.value)
    assert "\n" not in str(info.value)


def test_out_of_range_value_names_the_key_and_its_limits(tmp_path):
    path = write(tmp_path, "port = 70000\n")
    with pytest.raises(ConfigError, match=r"port \(config file .*\) must be between 0 and 65535, not 70000"):
        config.load(path, {})


def test_a_default_checked_against_a_file_value_is_named_as_an_option(tmp_path):
    # spool-threshold keeps its default (64K) but the file's ring is too small for it.
    path = write(tmp_path, "ring-size = \"64K\"\n")
    with pytest.raises(ConfigError, match="--spool-threshold must be between 1024 and 8192"):
        config.load(path, {})


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file .*No such file"):
        config.load(str(tmp_path / "absent.toml"), {})


@pytest.fixture
def run_serve(monkeypatch):
    """Run `serve` up to the point where it would start the server."""
    captured = {}

    def fake_serve(settings, reload):
        captured["config"], captured["reload"] = settings, reload
        return 0

    def run(*args, env=None):
        result = CliRunner().invoke(cli.main, ["serve", *args], env=env)
        return result, captured

    monkeypatch.setattr(supervisor, "serve", fake_serve)
    return run


def test_command_line_and_environment_win_over_the_file(tmp_path, run_serve):
    path = write(tmp_path, "port = 4999\nacceptors = 3\njob-retries = 2\n")
    result, got = run_serve("--config", path, "--port", "5001",
                            env={"MPGEARMAN_SERVE_JOB_RETRIES": "9"})
    assert result.exit_code == 0, result.output
    c = got["config"]
    assert (c.port, c.acceptors, c.job_retries) == (5001, 3, 9)


def test_reload_rereads_the_file_keeping_the_command_line(tmp_path, run_serve):
    path = write(tmp_path, "port = 4999\nworker-wakeup = 1\n")
    result, got = run_serve("--config", path, "--port", "5001")
    assert result.exit_code == 0, result.output
    (tmp_path / "mpgearman.toml").write_text("port = 4000\nworker-wakeup = 4\n")
    again = got["reload"]()
    assert (again.port, again.worker_wakeup) == (5001, 4)


def test_a_bad_file_stops_serve_with_one_line(tmp_path, run_serve):
    path = write(tmp_path, "bogus = 1\n")
    result, got = run_serve("--config", path)
    assert result.exit_code == 2
    assert "unknown key 'bogus'" in result.output
    assert "Traceback" not in result.output and not got


def test_spool_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("CACHE_DIRECTORY", "/var/cache/mpgearman")
    assert config.default_spool_dir() == "/var/cache/mpgearman/spool"
    monkeypatch.delenv("CACHE_DIRECTORY")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert config.default_spool_dir() == str(tmp_path / "mpgearman" / "spool")


def test_config_files_are_read_without_tomllib(tmp_path, monkeypatch):
    """Python 3.10 has no tomllib: config.py falls back to the tomli package
    (tomllib's origin, the same API), stood in for here by the parser this
    Python has."""
    import importlib.util
    import sys
    parser = config.tomllib
    monkeypatch.setitem(sys.modules, "tomllib", None)     # import tomllib fails
    monkeypatch.setitem(sys.modules, "tomli", parser)
    spec = importlib.util.find_spec("mpgearman.config")
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    assert fresh.tomllib is parser
    path = write(tmp_path, "port = 4999\n")
    assert fresh.load(path, {}).port == 4999
