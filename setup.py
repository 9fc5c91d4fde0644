"""C extensions only; everything else lives in pyproject.toml.

A C extension that does not build fails the install, with the compiler's
message and what to do: installed without them the server would run the
pure-Python twins in mpgearman/native/, about three times slower, without
anyone having chosen them. MPGEARMAN_PURE_BUILD=1 installs without the C
extensions on purpose (the twins serve on x86-64 only: see
mpgearman/native/__init__.py).
"""
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError

PURE_BUILD = os.environ.get("MPGEARMAN_PURE_BUILD") == "1"
CFLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra"]
ADVICE = ("install a C compiler and the Python headers (Debian/Ubuntu: apt-get install "
          "gcc python3-dev) and try again, or set MPGEARMAN_PURE_BUILD=1 to install the "
          "pure-Python data plane (about three times slower; x86-64 only)")


class BuildExt(build_ext):
    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - any compiler or linker failure
            raise CompileError(f"mpgearman: building the C extension {ext.name} failed "
                               f"({exc}); {ADVICE}") from exc


EXTENSIONS = [
    Extension("mpgearman.native._scan", ["mpgearman/native/scan.c"],
              extra_compile_args=CFLAGS),
    Extension("mpgearman.native._ring", ["mpgearman/native/ring.c"],
              depends=["mpgearman/native/layout.h"],
              extra_compile_args=CFLAGS),
    Extension("mpgearman.native._board", ["mpgearman/native/board.c"],
              depends=["mpgearman/native/layout.h"],
              extra_compile_args=CFLAGS),
    Extension("mpgearman.native._core",
              ["mpgearman/native/core.c", "mpgearman/native/core_ops.c",
               "mpgearman/native/core_handlers.c", "mpgearman/native/core_table.c",
               "mpgearman/native/core_spool.c", "mpgearman/native/core_rows.c",
               "mpgearman/native/core_rings.c", "mpgearman/native/core_rings_py.c",
               "mpgearman/native/core_journal.c"],
              depends=["mpgearman/native/core.h", "mpgearman/native/core_table.h",
                       "mpgearman/native/core_rows.h", "mpgearman/native/core_rings.h",
                       "mpgearman/native/core_py.h", "mpgearman/native/ringcore.h",
                       "mpgearman/native/layout.h"],
              extra_compile_args=CFLAGS),
    Extension("mpgearman.native._aloop",
              ["mpgearman/native/aloop.c", "mpgearman/native/atable.c",
               "mpgearman/native/arecords.c", "mpgearman/native/aaccept.c",
               "mpgearman/native/aconn_in.c",
               "mpgearman/native/aconn_out.c", "mpgearman/native/astatus.c",
               "mpgearman/native/aloop_py.c"],
              depends=["mpgearman/native/layout.h", "mpgearman/native/ringcore.h",
                       "mpgearman/native/aloop.h"],
              extra_compile_args=CFLAGS + ["-D_GNU_SOURCE"]),
]

if PURE_BUILD:
    print("mpgearman: MPGEARMAN_PURE_BUILD=1: installing without the C extensions "
          "(the server will run the pure-Python twins)")

setup(
    ext_modules=[] if PURE_BUILD else EXTENSIONS,
    cmdclass={"build_ext": BuildExt},
)
