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

from differential import run

_core = pytest.importorskip("mpgearman.native._core")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_same_output_as_the_python_core(data):
    run(data.draw, steps=100)
