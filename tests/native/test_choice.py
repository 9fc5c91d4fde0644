"""Which implementation runs: the twins' shared-memory ordering is only
trusted on x86-64 (refused at `serve` elsewhere), and the start-up line
says which one runs and why."""
import logging
import platform

import pytest
from click.testing import CliRunner

from mpgearman import cli, native, supervisor


@pytest.fixture
def twins(monkeypatch):
    """The ring and board twins chosen, as without a C build."""
    monkeypatch.setattr(native, "_ring_impl", "python")
    monkeypatch.setattr(native, "_board_impl", "python")
    monkeypatch.setattr(native, "IMPLEMENTATION", "python")


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "ppc64le", "riscv64", "s390x",
                                     "armv7l", "i686", ""])
def test_twins_are_refused_off_x86_64(twins, machine):
    with pytest.raises(native.UnsupportedPlatform, match="only safe on 64-bit x86-64"):
        native.check_platform(machine)


@pytest.mark.parametrize("machine", ["x86_64", "AMD64"])
def test_twins_are_accepted_on_x86_64(twins, machine):
    native.check_platform(machine, bits=64)


def test_a_32_bit_python_on_x86_64_is_refused(twins):
    with pytest.raises(native.UnsupportedPlatform, match=r"x86_64 \(32-bit\)"):
        native.check_platform("x86_64", bits=32)


def test_the_c_modules_run_anywhere(monkeypatch):
    monkeypatch.setattr(native, "_ring_impl", "c")
    monkeypatch.setattr(native, "_board_impl", "c")
    native.check_platform("aarch64")


def test_serve_refuses_the_twins_off_x86_64_with_one_line(twins, monkeypatch):
    started = []
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(supervisor, "serve", lambda *a, **k: started.append(a) or 0)
    result = CliRunner().invoke(cli.main, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert not started
    assert "cannot start: the pure-Python shared-memory rings and status board" \
           " are only safe on 64-bit x86-64" in result.output
    assert "this is aarch64" in result.output
    assert "Traceback" not in result.output


def test_the_start_line_names_the_c_extensions(monkeypatch):
    monkeypatch.setattr(native, "IMPLEMENTATION", "c")
    monkeypatch.setattr(native, "CORE", "c")
    assert native.describe() == (logging.INFO,
                                 "data plane: C extensions; coordinator core: c")


def test_the_start_line_names_twins_that_were_asked_for(twins, monkeypatch):
    monkeypatch.setattr(native, "_PURE", True)
    monkeypatch.setattr(native, "CORE", "python")
    assert native.describe() == (logging.INFO, "data plane: pure-Python twins "
                                 "(MPGEARMAN_PURE=1); coordinator core: python")


def test_twins_nobody_asked_for_are_a_warning_with_the_reason(twins, monkeypatch):
    monkeypatch.setattr(native, "_PURE", False)
    monkeypatch.setattr(native, "_MISSING", ["_ring: No module named 'mpgearman.native._ring'"])
    level, text = native.describe()
    assert level == logging.WARNING
    assert "pure-Python twins, about three times slower" in text
    assert "No module named 'mpgearman.native._ring'" in text


@pytest.mark.parametrize("env, want", [({}, "_aloop"), ({"MPGEARMAN_ACCEPTOR_LOOP": "c"}, "_aloop"),
                                       ({"MPGEARMAN_ACCEPTOR_LOOP": "python"}, None),
                                       ({"MPGEARMAN_PURE": "1"}, None)])
def test_the_acceptor_loop_choice(monkeypatch, env, want):
    pytest.importorskip("mpgearman.native._aloop")
    for name in ("MPGEARMAN_ACCEPTOR_LOOP", "MPGEARMAN_PURE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(native, "_PURE", env.get("MPGEARMAN_PURE") == "1")
    chosen = native._choose_loop()
    assert (chosen.__name__.rsplit(".", 1)[1] if chosen else None) == want


@pytest.mark.parametrize("want, pure, chosen", [
    (None, False, "c"), ("c", False, "c"), ("python", False, "python"),
    (None, True, "python"), ("c", True, "python")])
def test_the_coordinator_core_choice(monkeypatch, want, pure, chosen):
    pytest.importorskip("mpgearman.native._core")
    monkeypatch.setattr(native, "_PURE", pure)
    module, name = native._choose_core(want)
    assert name == chosen
    assert (module.__name__ if module else None) == (
        "mpgearman.native._core" if chosen == "c" else None)


def test_an_unknown_coordinator_core_is_refused():
    with pytest.raises(ValueError, match="MPGEARMAN_CORE must be one of c, python"):
        native._choose_core("rust")


def test_the_coordinator_builds_the_chosen_core(monkeypatch):
    pytest.importorskip("mpgearman.native._core")
    from mpgearman.config import Config
    from mpgearman.coordinator import ccore
    from mpgearman.coordinator.core import Core
    for name, kind in (("c", ccore.CCore), ("python", Core)):
        monkeypatch.setattr(native, "CORE", name)
        made = ccore.new_core(Config(job_handle_prefix="H:x"), spool=None, pid=1, version=b"v")
        assert type(made) is kind
