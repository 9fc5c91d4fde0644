"""The C event loop under AddressSanitizer and UBSan: built with
-fsanitize=address,undefined into a temporary directory and driven through
every twin conversation (test_aloop_twins.py) plus hostile input, in a
child Python with libasan preloaded. Any report fails the test."""
from pathlib import Path

import sanitizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

CHILD = r"""
import importlib.util, os, pathlib, random, sys, tempfile
spec = importlib.util.spec_from_file_location("mpgearman.native._aloop", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
sys.path.insert(0, sys.argv[2])
import test_aloop_twins as t
rng = random.Random(9)
hostile = [("send", 0, bytes(rng.randrange(256) for _ in range(n))) for n in (1, 12, 700)]
hostile += [("send", 0, t.req(7, b"fn\0" * 3000)), ("send", 0, t.HDR.pack(b"\0REQ", 7, 1 << 31))]
cases = list(t.CONVERSATIONS.values()) + [hostile[:1], hostile[1:2], hostile[2:3], hostile[3:]]
for steps in cases:
    t.play("c", steps, pathlib.Path(tempfile.mkdtemp()))
print("sanitized run done")
"""



def test_c_loop_is_clean_under_asan_and_ubsan(tmp_path):
    module, asan = sanitizer.build("mpgearman.native._aloop", tmp_path)
    sanitizer.run_clean(CHILD, [module, HERE], asan, tmp_path, 180, "sanitized run done",
                        PYTHONPATH=str(REPO))
