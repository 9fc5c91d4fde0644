"""The one place that chooses between the C hot path and its pure-Python twins.

Each C module has a twin with the same functions and the same behaviour:

    _scan  (scan.c)  <->  scan_py   framing scan of complete small packets
    _ring  (ring.c)  <->  ring_py   SPSC shared-memory ring operations

MPGEARMAN_PURE=1 forces the twins (tests run both ways).
MPGEARMAN_REQUIRE_NATIVE=1 makes a missing C module an ImportError (CI sets it).
"""
import os

IMPLEMENTATION = "python"

if os.environ.get("MPGEARMAN_PURE") == "1":
    from . import ring_py as ring
    from . import scan_py as scan
else:
    try:
        from . import _ring as ring
        from . import _scan as scan
        IMPLEMENTATION = "c"
    except ImportError:
        if os.environ.get("MPGEARMAN_REQUIRE_NATIVE") == "1":
            raise
        from . import ring_py as ring
        from . import scan_py as scan

__all__ = ["IMPLEMENTATION", "ring", "scan"]
