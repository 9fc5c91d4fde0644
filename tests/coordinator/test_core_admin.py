"""Admin text commands, byte for byte (PROTOCOL.md 4.1, 4.2, 4.3)."""
import pytest

from corekit import Close, T, got

UNKNOWN = b"ERR UNKNOWN_COMMAND Unknown+server+command"


def args_error(word):
    return b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+" + word + b"\r\n"


def test_status_empty_and_one_queued_job(h):
    a = h.conn()
    assert h.admin(a, b"status") == b".\n"
    h.worker(b"rev")
    h.submit(a, b"rev")
    assert h.admin(a, b"status") == b"rev\t1\t0\t1\n.\n"
    assert h.admin(a, b"STATUS") == b"rev\t1\t0\t1\n.\n"
    assert h.admin(a, b"status a b c d") == b"rev\t1\t0\t1\n.\n"


def test_status_lists_every_function_ever_seen(h):
    a = h.conn()
    w = h.worker(b"w1")
    h.submit(a, b"s1")
    h.admin(a, b"create function c1")
    h.send(w, T.CANT_DO, b"w1")
    assert h.admin(a, b"status") == b"w1\t0\t0\t0\ns1\t1\t0\t0\nc1\t0\t0\t0\n.\n"


def test_prioritystatus(h):
    a = h.conn()
    for ptype in (T.SUBMIT_JOB_HIGH, T.SUBMIT_JOB_HIGH_BG, T.SUBMIT_JOB, T.SUBMIT_JOB_LOW):
        h.submit(a, b"fpri", ptype=ptype)
    w = h.worker(b"fpri")
    h.grab(w)                                        # running jobs are not listed
    assert h.admin(a, b"prioritystatus") == b"fpri\t1\t1\t1\t1\n.\n"


def test_workers_lists_every_connection(h):
    a = h.conn(fd=41)
    w = h.conn(fd=38)
    h.send(w, T.SET_CLIENT_ID, b"worker-1")
    h.send(w, T.CAN_DO, b"rev")
    h.conn(peer="10.0.0.7", fd=39)
    assert h.admin(a, b"workers") == (b"41 127.0.0.1 - :\n38 127.0.0.1 worker-1 : rev\n"
                                      b"39 10.0.0.7 - :\n.\n")
    h.core.disconnect(w)
    assert h.admin(a, b"workers") == b"41 127.0.0.1 - :\n39 10.0.0.7 - :\n.\n"


def test_show_jobs_and_unique_jobs(h):
    a = h.conn()
    h.submit(a, b"f", b"-", b"d1")
    h.submit(a, b"f", b"-", b"d2")
    h.submit(a, b"f", b"")
    h.submit(a, b"f", b"u1", ptype=T.SUBMIT_JOB_BG)
    assert h.admin(a, b"show jobs") == (b"H:vm:1\t0\t0\t0\nH:vm:2\t0\t0\t0\nH:vm:3\t0\t0\t0\n"
                                        b"H:vm:4\t0\t0\t1\n.\n")
    assert h.admin(a, b"show unique jobs") == b"-\n-\n\nu1\n.\n"
    assert h.admin(a, b"SHOW UNIQUE JOBS") == b"-\n-\n\nu1\n.\n"


@pytest.mark.parametrize("line", [b"show jobs x", b"show unique", b"show unique jobs x",
                                  b"show foo", b"show "])
def test_show_bad_arguments(h, line):
    assert h.admin(h.conn(), line) == b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n"


def test_show_alone_is_unknown(h):
    assert h.admin(h.conn(), b"show") == UNKNOWN + b"show\r\n"
    assert h.admin(h.conn(), b"SHOW") == UNKNOWN + b"SHOW\r\n"


@pytest.mark.parametrize("crlf", [True, False])
def test_create_function_keeps_every_byte(h, crlf):
    a = h.conn()
    assert h.admin(a, b"create function foo", crlf) == b"OK\r\n"
    assert h.admin(a, b"status") == b"foo\t0\t0\t0\n.\n"
    assert h.admin(a, b"CREATE FUNCTION foo", crlf) == b"OK\r\n"
    assert h.admin(a, b"status") == b"foo\t0\t0\t0\n.\n"


@pytest.mark.parametrize("line", [b"create", b"create function", b"create fn foo",
                                  b"create function a b", b"create function "])
def test_create_function_bad_arguments(h, line):
    assert h.admin(h.conn(), line) == args_error(line.split(b" ")[0])


def test_create_error_echoes_word_as_typed(h):
    assert h.admin(h.conn(), b"CREATE x") == args_error(b"CREATE")


class TestDropFunction:
    def test_drop_empty_function_case_insensitive(self, h):
        a = h.conn()
        h.admin(a, b"create function NewFn")
        h.admin(a, b"maxqueue NewFn 1")
        assert h.admin(a, b"drop function newfn") == b"OK\r\n"
        assert h.admin(a, b"status") == b".\n"
        h.submit(a, b"NewFn")                             # limits vanished with it
        h.submit(a, b"NewFn")

    def test_unknown_function(self, h):
        assert h.admin(h.conn(), b"drop function nosuch") == b"ERR function not found\r\n"

    def test_refused_with_workers_or_running_jobs(self, h):
        a = h.conn()
        w = h.worker(b"f")
        assert h.admin(a, b"drop function f") == (
            b"ERR there are still connected workers or executing clients\r\n")
        h.submit(a, b"f")
        h.grab(w)
        h.send(w, T.CANT_DO, b"f")
        assert h.admin(a, b"drop function f") == (
            b"ERR there are still connected workers or executing clients\r\n")
        h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"")
        assert h.admin(a, b"drop function f") == b"OK\r\n"

    def test_refused_while_jobs_are_queued(self, h):
        a = h.conn()
        for _ in range(7):
            h.submit(a, b"f", ptype=T.SUBMIT_JOB_BG)
        assert h.admin(a, b"drop function f") == b"ERR there are still queued jobs\r\n"
        assert h.admin(a, b"status") == b"f\t7\t0\t0\n.\n"
        for i in range(1, 8):
            h.admin(a, b"cancel job H:vm:%d" % i)
        assert h.admin(a, b"drop function f") == b"OK\r\n"     # only reapable jobs left
        assert h.core.jobs.jobs == {}

    def test_refused_while_an_epoch_job_waits(self, h):
        a = h.conn()
        h.send(a, T.SUBMIT_JOB_EPOCH, b"f", b"", b"%d" % (h.clock() + 60), b"x")
        assert h.admin(a, b"drop function f") == b"ERR there are still queued jobs\r\n"

    @pytest.mark.parametrize("line", [b"drop", b"drop function", b"drop fn x"])
    def test_bad_arguments(self, h, line):
        assert h.admin(h.conn(), line) == args_error(b"drop")


def test_maxqueue_alone(h):
    assert h.admin(h.conn(), b"maxqueue") == args_error(b"maxqueue")


def test_getpid_verbose_version(h):
    a = h.conn()
    assert h.admin(a, b"getpid") == b"OK 13651\n"
    assert h.admin(a, b"verbose") == b"OK INFO\n"
    assert h.admin(a, b"version") == b"OK 1.1.20+ds\n"
    assert h.admin(a, b"VERSION extra words") == b"OK 1.1.20+ds\n"


@pytest.mark.parametrize("level, word", [("debug", b"DEBUG"), ("warning", b"WARNING"),
                                         ("error", b"ERROR"), ("critical", b"CRITICAL")])
def test_verbose_levels(make, level, word):
    h = make(log_level=level)
    assert h.admin(h.conn(), b"verbose") == b"OK " + word + b"\n"


@pytest.mark.parametrize("line, word", [(b"bogus", b"bogus"), (b"", b""), (b" status", b""),
                                        (b"shutdown", b"shutdown"),
                                        (b"shutdown graceful", b"shutdown"),
                                        (b"status\twith tab", b"status\twith")])
def test_unknown_commands(h, line, word):
    assert h.admin(h.conn(), line) == UNKNOWN + word + b"\r\n"


def test_more_than_five_words_closes_silently(h):
    a, c = h.conn(), h.conn()
    h.submit(a, b"f", b"u")
    h.core.admin(a, b"status a b c d e", True)
    assert h.take() == [Close(a)]
    assert a not in h.core.conns
    assert h.admin(c, b"status") == b"f\t1\t0\t0\n.\n"      # its job is abandoned
    assert h.admin(c, b"show jobs") == b"H:vm:1\t0\t1\t0\n.\n"


def test_trailing_space_is_an_extra_empty_word(h):
    a = h.conn()
    assert h.admin(a, b"status a b c d") == b".\n"
    h.core.admin(a, b"status a b c d ", True)
    assert h.take() == [Close(a)]


def test_binary_and_text_interleave(h):
    a = h.conn()
    assert h.admin(a, b"version") == b"OK 1.1.20+ds\n"
    assert got(h.send(a, T.ECHO_REQ, b"mixed"), a) == [(T.ECHO_RES, b"mixed")]
    assert h.admin(a, b"getpid") == b"OK 13651\n"


def test_large_listing_is_one_reply(h):
    a = h.conn()
    for i in range(5000):
        h.submit(a, b"f%d" % (i % 50), b"u%d" % i, ptype=T.SUBMIT_JOB_BG)
    reply = h.admin(a, b"show jobs")
    assert reply.count(b"\n") == 5001 and reply.endswith(b"H:vm:5000\t0\t0\t1\n.\n")
    assert h.admin(a, b"show unique jobs").count(b"\n") == 5001
    assert h.admin(a, b"status").count(b"\t100\t") == 50


ODD = b"line\nbreak\ttab\r\x01\x7f\\x41"
ODD_SHOWN = b"line\\x0abreak\\x09tab\\x0d\\x01\\x7f\\x5cx41"


def test_odd_bytes_in_names_and_ids_are_shown_escaped(h):
    """Control bytes, DEL and the backslash show as \\xNN, so every listing
    keeps one entry per line; other bytes (spaces, UTF-8) show as they are."""
    a = h.conn()
    w = h.worker(ODD, b"caf\xc3\xa9 au lait")
    h.send(w, T.SET_CLIENT_ID, b"id\nwith newline")
    h.submit(a, ODD, unique=b"u\nv\\")
    assert h.admin(a, b"status") == (ODD_SHOWN + b"\t1\t0\t1\n"
                                     + b"caf\xc3\xa9 au lait\t0\t0\t1\n.\n")
    assert h.admin(a, b"prioritystatus").startswith(ODD_SHOWN + b"\t0\t1\t0\t1\n")
    workers = h.admin(a, b"workers").split(b"\n")
    assert workers[1] == (b"%d 127.0.0.1 id\\x0awith newline : caf\xc3\xa9 au lait "
                          % h.core.conns[w].fd + ODD_SHOWN)
    assert h.admin(a, b"show unique jobs") == b"u\\x0av\\x5c\n.\n"


def test_admin_commands_take_the_escaped_spelling_of_a_name(h):
    a = h.conn()
    w = h.worker(ODD)
    assert h.admin(a, b"create function new\\x0aname") == b"OK\r\n"
    assert b"new\nname" in h.core.functions.by_name
    assert h.admin(a, b"maxqueue " + ODD_SHOWN + b" 3") == b"OK\r\n"
    assert h.core.functions.by_name[ODD].maxq == [3, 3, 3]
    h.core.disconnect(w)
    assert h.admin(a, b"drop function " + ODD_SHOWN.upper().replace(b"\\X", b"\\x")) \
        == b"OK\r\n"
    assert h.admin(a, b"drop function new\\x0aname") == b"OK\r\n"
    assert h.admin(a, b"status") == b".\n"
    # a backslash that starts no \xNN escape is taken as it is
    assert h.admin(a, b"create function a\\b\\x4") == b"OK\r\n"
    assert h.admin(a, b"status") == b"a\\x5cb\\x5cx4\t0\t0\t0\n.\n"
    assert h.admin(a, b"drop function a\\b\\x4") == b"OK\r\n"
    assert h.admin(a, b"create function nul\\x00") == b"OK\r\n"
    assert list(h.core.functions.by_name) == [b"nul\\x00"]
