"""Log lines: role and pid on each; under journald no timestamp and the
syslog priority in front, so the journal records each line's level."""
import logging
import os
import re

import pytest

from mpgearman import log


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def lines_of(capsys):
    return capsys.readouterr().err.splitlines()


def test_journald_lines_carry_priority_and_no_timestamp(monkeypatch, capsys, restore_root):
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    log.setup("debug", "coordinator")
    logger = logging.getLogger("mpgearman.test")
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    logger.critical("c")
    pid = os.getpid()
    assert lines_of(capsys) == [
        f"<7>mpgearman coordinator[{pid}] DEBUG d",
        f"<6>mpgearman coordinator[{pid}] INFO i",
        f"<4>mpgearman coordinator[{pid}] WARNING w",
        f"<3>mpgearman coordinator[{pid}] ERROR e",
        f"<2>mpgearman coordinator[{pid}] CRITICAL c",
    ]


def test_a_terminal_gets_timestamps_and_the_level_filter_holds(monkeypatch, capsys, restore_root):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    log.setup("warning", "acceptor-1")
    logger = logging.getLogger("mpgearman.test")
    logger.info("hidden")
    logger.warning("shown")
    [line] = lines_of(capsys)
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} mpgearman acceptor-1\[{os.getpid()}\] "
                        r"WARNING shown", line)
