"""The one place that chooses between the C hot path and its pure-Python twins.

Each C module has a twin with the same functions and the same behaviour:

    _scan  (scan.c)  <->  scan_py   framing scan of complete small packets
    _ring  (ring.c)  <->  ring_py   SPSC shared-memory ring operations
    _board (board.c) <->  board_py  job status board: seqlock slots, counters

MPGEARMAN_PURE=1 forces the twins (tests run both ways).
MPGEARMAN_REQUIRE_NATIVE=1 makes a missing C module an ImportError (CI sets it).
"""
import importlib
import os

_PURE = os.environ.get("MPGEARMAN_PURE") == "1"
_REQUIRE = os.environ.get("MPGEARMAN_REQUIRE_NATIVE") == "1"


def _choose(c_name: str, twin_name: str):
    if not _PURE:
        try:
            return importlib.import_module(f"{__name__}.{c_name}"), "c"
        except ImportError:
            if _REQUIRE:
                raise
    return importlib.import_module(f"{__name__}.{twin_name}"), "python"


scan, _scan_impl = _choose("_scan", "scan_py")
ring, _ring_impl = _choose("_ring", "ring_py")
board, _board_impl = _choose("_board", "board_py")

# "c" only when every module is the C one.
IMPLEMENTATION = "c" if _scan_impl == _ring_impl == _board_impl == "c" else "python"

__all__ = ["IMPLEMENTATION", "board", "ring", "scan"]
