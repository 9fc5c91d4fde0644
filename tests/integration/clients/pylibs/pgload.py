"""Import one of the python-gearman 2.x descendants by PyPI name.

gearman3 and pygearman both install a top-level package called `gearman`,
so each lives in its own directory (tests/run installs them with
`pip --target`) and the test puts the right one on PYTHONPATH.

gearman3 0.2.1 still calls array.fromstring(), which Python 3.9 removed;
its socket reads then die with AttributeError on any server. With
GEARMAN3_SHIM=1 (the default) the connection's receive buffer gets a
fromstring alias so the rest of gearman3's protocol code can run
unchanged; GEARMAN3_SHIM=0 shows the library as published.
"""
from __future__ import annotations

import array
import importlib
import os

MODULES = {"gearman3": "gearman", "pygearman": "gearman",
           "python3-gearman": "python3_gearman"}


class _FromstringArray(array.array):
    def fromstring(self, data):
        self.frombytes(data)


def _shim_gearman3(mod) -> None:
    conn_cls = mod.connection.GearmanConnection
    if hasattr(array.array, "fromstring") or "_incoming_buffer" in vars(conn_cls):
        return

    def get(self):
        return self.__dict__["_pg_incoming"]

    def set_(self, value):
        if not isinstance(value, _FromstringArray):
            value = _FromstringArray("b", value)
        self.__dict__["_pg_incoming"] = value

    conn_cls._incoming_buffer = property(get, set_)


def load(lib: str):
    mod = importlib.import_module(MODULES[lib])
    importlib.import_module(MODULES[lib] + ".connection")
    if lib == "gearman3" and os.environ.get("GEARMAN3_SHIM", "1") != "0":
        _shim_gearman3(mod)
    return mod


def text(value) -> str:
    """Job data as str whatever the library hands back (bytes or str)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return value
