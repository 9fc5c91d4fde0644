"""The default job handle prefix: "H:<hostname>:<port>", so two servers on
one host never hand out the same handle, the same across restarts on one
port, and short enough that every handle fits gearmand's 64 bytes."""
import pytest

from mpgearman import config
from mpgearman.config import Config, ConfigError, default_handle_prefix


def test_the_port_makes_the_prefix_of_each_server():
    assert default_handle_prefix(4730, "gear1") == "H:gear1:4730"
    assert default_handle_prefix(4731, "gear1") == "H:gear1:4731"
    assert Config(port=4731).handle_prefix.startswith(b"H:")
    assert Config(port=4731).handle_prefix.endswith(b":4731")
    assert Config(port=4731, job_handle_prefix="P").handle_prefix == b"P"


@pytest.mark.parametrize("host,want", [
    ("gear1.example.com", "H:gear1.example.com:4730"),             # fits: kept whole
    ("queue-01.eu-west-1.compute.internal.example.com", "H:queue-01:4730"),  # domain dropped
    ("x" * 80, "H:" + "x" * 35 + ":4730"),                          # one long label cut
    ("", "H:localhost:4730"),
])
def test_long_hostnames_are_shortened(host, want):
    prefix = default_handle_prefix(4730, host)
    assert prefix == want
    assert len(prefix) <= config.PREFIX_MAX
    largest = f"{prefix}:{2 ** 64 - 1}"
    assert len(largest) <= config.HANDLE_MAX == 63


def test_a_prefix_too_long_for_a_handle_is_refused():
    config.check(Config(job_handle_prefix="P" * config.PREFIX_MAX))
    with pytest.raises(ConfigError, match="--job-handle-prefix must be at most 42 bytes"):
        config.check(Config(job_handle_prefix="P" * (config.PREFIX_MAX + 1)))
