"""The one place that chooses between the C hot path and its pure-Python twins.

Each C module has a twin with the same functions and the same behaviour:

    _scan  (scan.c)  <->  scan_py   framing scan of complete small packets
    _ring  (ring.c)  <->  ring_py   SPSC shared-memory ring operations
    _board (board.c) <->  board_py  job status board: seqlock slots, counters
    _aloop (aloop.c ...) <-> acceptor/loop.py   the acceptor's event loop
    _core  (core*.c)  <-> coordinator/core.py  the coordinator's job table and
                                               per-packet handlers (CORE)

MPGEARMAN_PURE=1 forces the twins (tests run both ways).
MPGEARMAN_CORE=c|python picks the coordinator's core alone (default c when
_core is built; MPGEARMAN_PURE=1 implies python).
MPGEARMAN_REQUIRE_NATIVE=1 makes a missing C module an ImportError (CI sets it).

The ring and board twins share memory between processes with plain loads
and stores, which is only safe under x86-64's store order (ring_py.py says
how): `serve` calls check_platform() and refuses them on any other CPU.
The scan twin touches no shared memory and runs anywhere.
"""
import importlib
import logging
import os
import platform
import struct

_PURE = os.environ.get("MPGEARMAN_PURE") == "1"
_REQUIRE = os.environ.get("MPGEARMAN_REQUIRE_NATIVE") == "1"
_MISSING = []     # why a C module is not used: "_ring: <import error>"

# CPUs whose memory ordering the ring and board twins rely on.
TWIN_MACHINES = frozenset({"x86_64", "amd64"})


class UnsupportedPlatform(RuntimeError):
    """The server would share memory through the twins on a CPU where
    that is not safe."""


def _choose(c_name: str, twin_name: str):
    if not _PURE:
        try:
            return importlib.import_module(f"{__name__}.{c_name}"), "c"
        except ImportError as exc:
            if _REQUIRE:
                raise
            _MISSING.append(f"{c_name}: {exc}")
    return importlib.import_module(f"{__name__}.{twin_name}"), "python"


scan, _scan_impl = _choose("_scan", "scan_py")
ring, _ring_impl = _choose("_ring", "ring_py")
board, _board_impl = _choose("_board", "board_py")


def _choose_loop():
    """The acceptor's event loop: the C module _aloop (the default), or None
    for its twin, the Python loop of mpgearman/acceptor/loop.py, which
    MPGEARMAN_PURE=1 or MPGEARMAN_ACCEPTOR_LOOP=python choose."""
    if _PURE or os.environ.get("MPGEARMAN_ACCEPTOR_LOOP", "c") == "python":
        return None
    try:
        return importlib.import_module(f"{__name__}._aloop")
    except ImportError as exc:
        if _REQUIRE:
            raise
        _MISSING.append(f"_aloop: {exc}")
        return None


aloop = _choose_loop()

CORES = ("c", "python")


def _choose_core(want: str | None):
    """(the _core module or None, "c" or "python"): the coordinator's core.
    `want` is MPGEARMAN_CORE (None: c when built); MPGEARMAN_PURE=1 means
    python whatever it says."""
    if want is not None and want not in CORES:
        raise ValueError(f"MPGEARMAN_CORE must be one of {', '.join(CORES)}, not {want!r}")
    if _PURE or want == "python":
        return None, "python"
    try:
        return importlib.import_module(f"{__name__}._core"), "c"
    except ImportError as exc:
        if _REQUIRE or want == "c":
            raise
        _MISSING.append(f"_core: {exc}")
        return None, "python"


core, CORE = _choose_core(os.environ.get("MPGEARMAN_CORE") or None)
_DURABLE_PYTHON = False


def settle_core(durability: str) -> None:
    """The C core makes journal records but cannot replay them yet, so a
    durable server (--durability second|always) runs the Python Core;
    called once by `serve`, before the coordinator starts."""
    global CORE, _DURABLE_PYTHON
    if core_for(durability) != CORE:
        CORE, _DURABLE_PYTHON = "python", True


def core_for(durability: str) -> str:
    """The core a server with this --durability runs (see settle_core)."""
    return "python" if durability != "none" else CORE

# "c" only when every module is the C one.
IMPLEMENTATION = "c" if _scan_impl == _ring_impl == _board_impl == "c" else "python"


def describe() -> tuple:
    """(logging level, text): the line `serve` logs at start about which
    implementation runs and why; a warning when nobody asked for the twins."""
    core_part = f"; coordinator core: {CORE}" + (
        " (the C core runs with --durability none)" if _DURABLE_PYTHON else "")
    if IMPLEMENTATION == "c":
        return logging.INFO, "data plane: C extensions" + core_part
    if _PURE:
        return logging.INFO, "data plane: pure-Python twins (MPGEARMAN_PURE=1)" + core_part
    return logging.WARNING, (
        f"data plane: pure-Python twins, about three times slower: the C extensions "
        f"are not built ({'; '.join(_MISSING)}); reinstall mpgearman with a C compiler"
        + core_part)


def check_platform(machine: str | None = None, bits: int | None = None) -> None:
    """Raise UnsupportedPlatform if the ring or board twin is in use on a
    CPU other than x86-64, or by a 32-bit Python (whose 8-byte stores may
    tear). machine, bits: platform.machine() and the pointer size, for tests."""
    if _ring_impl == _board_impl == "c":
        return
    machine = machine if machine is not None else platform.machine()
    bits = bits if bits is not None else struct.calcsize("P") * 8
    if machine.lower() in TWIN_MACHINES and bits == 64:
        return
    how = "unset MPGEARMAN_PURE" if _PURE else (
        "install a C compiler and the Python headers and reinstall mpgearman "
        "(without MPGEARMAN_PURE_BUILD)")
    raise UnsupportedPlatform(
        f"the pure-Python shared-memory rings and status board are only safe on "
        f"64-bit x86-64, whose store order they rely on; this is {machine or 'unknown'} "
        f"({bits}-bit). Use the C extensions: {how}")


__all__ = ["CORE", "IMPLEMENTATION", "settle_core", "core_for", "aloop", "core", "UnsupportedPlatform", "board",
           "check_platform",
           "describe", "ring", "scan"]
