"""Admin text protocol: how a line is cut into words, and the reply texts.

Sans-IO like the rest of protocol/: no sockets, clocks or server state. The
coordinator decides what each command does; this module owns the spelling
of gearmand 1.1.20's replies (PROTOCOL.md section 4) so it lives in one place.

Reply shapes: listings end with ".\\n" and use "\\n" line ends; "OK\\r\\n"
acknowledges a change; "OK <value>\\n" answers a query; every ERR line ends
with "\\r\\n".
"""
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
