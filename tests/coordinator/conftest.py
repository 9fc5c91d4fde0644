"""Fixtures for the coordinator core tests (helpers live in corekit.py).

Every scenario ends with the spool check: once no job is left, no spool name
may be live (each ref released exactly once; FakeSpool asserts on doubles)."""
import pytest

from corekit import Harness


def _check(harness):
    if not harness.core.jobs.jobs:
        assert harness.spool.live == set(), f"leaked spool names: {harness.spool.live}"


@pytest.fixture
def h():
    harness = Harness()
    yield harness
    _check(harness)


@pytest.fixture
def make():
    made = []

    def factory(**options):
        made.append(Harness(**options))
        return made[-1]
    yield factory
    for harness in made:
        _check(harness)
