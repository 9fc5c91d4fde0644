"""The C core with its rings served in C, under AddressSanitizer and UBSan:
built with -fsanitize=address,undefined into a temporary directory and
driven through the twin tests (test_loop_native_twins.py) plus hostile
PACKET records (random types, bodies and NUL placement), in a child Python
with libasan preloaded. Any report fails the test."""
from pathlib import Path

import sanitizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

CHILD = r"""
import importlib.util, pathlib, random, sys, tempfile
spec = importlib.util.spec_from_file_location("mpgearman.native._core", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
import mpgearman.native
mpgearman.native._core = module
sys.path.insert(0, sys.argv[2])
import pytest
assert pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                    sys.argv[2] + "/test_loop_native_twins.py"]) == 0
from ringtwins import Twin
from mpgearman.ipc import messages
rng = random.Random(7)
twin = Twin(pathlib.Path(tempfile.mkdtemp()), True, ring=1 << 14)
conns = [messages.conn_id(0, 0, n) for n in range(1, 6)]
for rnd in range(60):
    recs = [messages.connect(c, n, "x") for n, c in enumerate(conns)]
    for _ in range(20):
        body = bytes(rng.choice(b"\0ab") for _ in range(rng.randrange(40)))
        recs.append(messages.packet(rng.choice(conns), rng.randrange(-5, 50) & 0xFFFF, body))
    twin.feed(0, recs)
    twin.turn()
    twin.taken()
twin.close()
print("sanitized run done")
"""



def test_rings_served_in_c_are_clean_under_asan_and_ubsan(tmp_path):
    module, asan = sanitizer.build("mpgearman.native._core", tmp_path)
    sanitizer.run_clean(CHILD, [module, HERE], asan, tmp_path, 240, "sanitized run done",
                        PYTHONPATH=str(REPO))
