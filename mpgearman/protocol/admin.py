"""Admin text protocol: how a line is cut into words, and the reply texts.

Sans-IO like the rest of protocol/: no sockets, clocks or server state. The
coordinator decides what each command does; this module owns the spelling
of gearmand 1.1.20's replies (PROTOCOL.md section 4) so it lives in one place.

Reply shapes: listings end with ".\\n" and use "\\n" line ends; "OK\\r\\n"
acknowledges a change; "OK <value>\\n" answers a query; every ERR line ends
with "\\r\\n".

Names in replies (ours, not gearmand's, which prints them raw): a function
name, unique id or client id is any byte string without NUL, so shown()
writes its control bytes (0x00-0x1f), DEL and the backslash as \\xNN and
every listing keeps one entry per line; named() reads that spelling back
where a command takes a name. Any other byte, spaces included, is shown as
it is, so ordinary names look exactly as in gearmand.
"""
import re

MAX_WORDS = 5          # a 6th word makes gearmand drop the connection

OK = b"OK\r\n"
END = b".\n"
ERR_UNKNOWN_ERROR = b"ERR UNKNOWN_ERROR\r\n"
ERR_UNKNOWN_SHOW = b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n"
ERR_UNKNOWN_JOB = b"ERR UNKNOWN_JOB\r\n"
ERR_NO_FUNCTION = b"ERR function not found\r\n"
ERR_FUNCTION_BUSY = b"ERR there are still connected workers or executing clients\r\n"
# Ours: gearmand drops a function with queued jobs and leaves them dangling.
ERR_FUNCTION_QUEUED = b"ERR there are still queued jobs\r\n"

_UNKNOWN_COMMAND = b"ERR UNKNOWN_COMMAND Unknown+server+command"
_INVALID_ARGUMENTS = b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+"

# gearmand's verbose level names, keyed by our config.log_level words.
_VERBOSE = {
    "fatal": b"FATAL", "alert": b"ALERT", "critical": b"CRITICAL", "crit": b"CRITICAL",
    "error": b"ERROR", "err": b"ERROR", "warning": b"WARNING", "warn": b"WARNING",
    "notice": b"NOTICE", "info": b"INFO", "debug": b"DEBUG",
}

_ODD_BYTES = bytes(range(0x20)) + b"\x7f\\"
_ODD = re.compile(rb"[\x00-\x1f\x7f\\]")
_ESCAPE = re.compile(rb"\\x([0-9A-Fa-f]{2})")


def shown(raw: bytes) -> bytes:
    """A name as a reply shows it: control bytes, DEL and "\\" as \\xNN."""
    if len(raw.translate(None, _ODD_BYTES)) == len(raw):     # (faster than a search)
        return raw
    return _ODD.sub(lambda m: b"\\x%02x" % m[0][0], raw)


def named(word: bytes) -> bytes:
    """The name an admin word spells: each \\xNN is the byte NN; a backslash
    that starts no such escape, or \\x00 (no name holds a NUL), is taken as
    it is."""
    if b"\\" not in word:
        return word
    return _ESCAPE.sub(_unescape, word)


def _unescape(m) -> bytes:
    value = int(m[1], 16)
    return bytes((value,)) if value else m[0]


def split_words(line: bytes) -> list[bytes]:
    """Words as gearmand cuts them: split at a space, skip the spaces that
    follow it. So a leading space gives an empty first word, a trailing run
    of spaces one empty last word, tabs are not separators, and an empty line
    is one empty word."""
    if b"  " not in line:
        return line.split(b" ")
    words = []
    start, n = 0, len(line)
    while True:
        cut = line.find(b" ", start)
        if cut < 0:
            words.append(line[start:])
            return words
        words.append(line[start:cut])
        start = cut + 1
        while start < n and line[start] == 0x20:
            start += 1


def unknown_command(word: bytes) -> bytes:
    return _UNKNOWN_COMMAND + word + b"\r\n"


def invalid_arguments(word: bytes) -> bytes:
    return _INVALID_ARGUMENTS + word + b"\r\n"


def ok_value(value: bytes) -> bytes:
    return b"OK " + value + b"\n"


def verbose_name(level: str) -> bytes:
    return _VERBOSE.get(level.lower(), level.upper().encode())
