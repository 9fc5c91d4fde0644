"""The C core under AddressSanitizer and UBSan: _core built with
-fsanitize=address,undefined into a temporary directory, loaded in a child
Python (libasan preloaded) as mpgearman.native._core, and driven by the
differential test (differential.py: every packet type, spooled payloads,
unusable spool files, every admin command, against the Python Core) and
the coordinator loop tests. Any report fails the test.

MPGEARMAN_SANITIZED_TESTS=all runs all of tests/coordinator in the child
instead (minutes, not seconds)."""
import os
from pathlib import Path

import sanitizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

CHILD = r"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("mpgearman.native._core", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
from mpgearman import native
assert native.core is module and native.CORE == "c", native.CORE
import pytest
code = pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                    "-k", "not sanitized", *sys.argv[2:]])
print("sanitized run done", code)
sys.exit(code)
"""



def test_c_core_is_clean_under_asan_and_ubsan(tmp_path):
    module, asan = sanitizer.build("mpgearman.native._core", tmp_path)
    if os.environ.get("MPGEARMAN_SANITIZED_TESTS") == "all":
        tests, timeout = [HERE], 1800
    else:
        tests, timeout = [HERE / "test_core_differential.py", HERE / "test_loop_contain.py",
                          HERE / "test_loop_figures.py"], 300
    sanitizer.run_clean(CHILD, [module, *tests], asan, tmp_path, timeout,
                        "sanitized run done 0", PYTHONPATH=f"{REPO}{os.pathsep}{HERE}",
                        MPGEARMAN_CORE="c")
