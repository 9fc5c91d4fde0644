"""The C core (mpgearman/native/core*.c) against the Python Core, its
specification: generated request sequences over several connections (every
packet type, coalescing by unique and by data, disconnects with requeue and
job_retries, admin cancels, priorities, epoch jobs, CAN_DO_TIMEOUT expiry,
spooled payloads and results, unusable spool files, every admin command)
must give the same output and the same answer to every admin command. The driver is
differential.py."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from differential import Pair, run
from mpgearman.protocol.encoder import encode
from mpgearman.protocol.packets import T

_core = pytest.importorskip("mpgearman.native._core")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_same_output_as_the_python_core(data):
    run(data.draw, steps=100)


@pytest.mark.parametrize("cause", ["lost", "timeout"])
def test_fail_reasons_warning_when_retries_run_out_is_the_same(cause):
    """OPTION_REQ fail_reasons: WORK_WARNING naming the cause, then WORK_FAIL,
    to the client that set it; a plain client attached to the job gets only
    the WORK_FAIL. Both cores, same bytes."""
    pair = Pair({"job_retries": 2, "worker_wakeup": 0,
                             "round_robin": False, "exceptions": False})
    pair.connect()
    pair.connect()
    told, plain = pair.live
    pair.packet(told, T.OPTION_REQ, (b"fail_reasons",))
    for c in (told, plain):
        pair.packet(c, T.SUBMIT_JOB, (b"f", b"u", b"x"))
    for _ in range(2):
        pair.connect()
        w = pair.live[-1]
        pair.packet(w, T.CAN_DO_TIMEOUT, (b"f", b"1000"))
        pair.packet(w, T.GRAB_JOB, ())
        if cause == "lost":
            pair.disconnect(w)
        else:
            pair.advance(2)
    why = b"CAN_DO_TIMEOUT expired" if cause == "timeout" else b"worker lost"
    fail = encode(T.WORK_FAIL, b"H:vm:1")
    assert pair.sent[-3:] == [       # newest attachment first, as every fan-out
        (plain, fail),
        (told, encode(T.WORK_WARNING, b"H:vm:1", b"retries exhausted after 2 attempts: " + why)),
        (told, fail)]
