"""C extensions only; everything else lives in pyproject.toml.

The extensions are optional for a user without a compiler (the pure-Python
twins in mpgearman/native/ take over), but MPGEARMAN_REQUIRE_NATIVE=1 makes a
failed build fatal, which CI sets.
"""
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE = os.environ.get("MPGEARMAN_REQUIRE_NATIVE") == "1"
CFLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra"]


class OptionalBuildExt(build_ext):
    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure
            if REQUIRE:
                raise
            print(f"mpgearman: C extensions not built ({exc}); using pure Python")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            if REQUIRE:
                raise
            print(f"mpgearman: {ext.name} not built ({exc}); using pure Python")


setup(
    ext_modules=[
        Extension("mpgearman.native._scan", ["mpgearman/native/scan.c"],
                  extra_compile_args=CFLAGS),
        Extension("mpgearman.native._ring", ["mpgearman/native/ring.c"],
                  depends=["mpgearman/native/layout.h"],
                  extra_compile_args=CFLAGS),
        Extension("mpgearman.native._board", ["mpgearman/native/board.c"],
                  depends=["mpgearman/native/layout.h"],
                  extra_compile_args=CFLAGS),
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
