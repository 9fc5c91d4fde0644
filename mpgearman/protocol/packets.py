"""Packet types of the Gearman binary protocol and their argument layouts.

Header (12 bytes, big-endian)::

    +--------+--------+--------+----------------------+
    | magic  |  type  |  size  | payload (size bytes) |
    | 4 B    |  u32   |  u32   | arg\\0arg\\0...tail     |
    +--------+--------+--------+----------------------+

ARGS[type] = (argc, has_data), as gearmand's command table:
has_data: `argc` NUL-terminated arguments, then opaque data (may hold NULs);
otherwise: argc-1 NUL-terminated arguments and a final one taking the rest.
"""
import enum
import struct

REQ = b"\0REQ"
RES = b"\0RES"
HEADER = struct.Struct(">4sII")
HEADER_SIZE = 12
MAX_SIZE = 0xFFFFFFFF          # the size field is a u32
MAX_ARGS_BYTES = 8192          # non-data arguments must fit here (as gearmand)
MAX_HANDLE = 63
MAX_UNIQUE = 64                # longer uniques are refused with ARGUMENT_TOO_LARGE


class PacketType(enum.IntEnum):
    CAN_DO = 1
    CANT_DO = 2
    RESET_ABILITIES = 3
    PRE_SLEEP = 4
    UNUSED = 5
    NOOP = 6
    SUBMIT_JOB = 7
    JOB_CREATED = 8
    GRAB_JOB = 9
    NO_JOB = 10
    JOB_ASSIGN = 11
    WORK_STATUS = 12
    WORK_COMPLETE = 13
    WORK_FAIL = 14
    GET_STATUS = 15
    ECHO_REQ = 16
    ECHO_RES = 17
    SUBMIT_JOB_BG = 18
    ERROR = 19
    STATUS_RES = 20
    SUBMIT_JOB_HIGH = 21
    SET_CLIENT_ID = 22
    CAN_DO_TIMEOUT = 23
    ALL_YOURS = 24
    WORK_EXCEPTION = 25
    OPTION_REQ = 26
    OPTION_RES = 27
    WORK_DATA = 28
    WORK_WARNING = 29
    GRAB_JOB_UNIQ = 30
    JOB_ASSIGN_UNIQ = 31
    SUBMIT_JOB_HIGH_BG = 32
    SUBMIT_JOB_LOW = 33
    SUBMIT_JOB_LOW_BG = 34
    SUBMIT_JOB_SCHED = 35
    SUBMIT_JOB_EPOCH = 36
    SUBMIT_REDUCE_JOB = 37
    SUBMIT_REDUCE_JOB_BACKGROUND = 38
    GRAB_JOB_ALL = 39
    JOB_ASSIGN_ALL = 40
    GET_STATUS_UNIQUE = 41
    STATUS_RES_UNIQUE = 42


T = PacketType
MAX_TYPE = 42

ARGS: dict[int, tuple[int, bool]] = {
    T.CAN_DO: (1, False), T.CANT_DO: (1, False), T.RESET_ABILITIES: (0, False),
    T.PRE_SLEEP: (0, False), T.UNUSED: (0, False), T.NOOP: (0, False),
    T.SUBMIT_JOB: (2, True), T.JOB_CREATED: (1, False), T.GRAB_JOB: (0, False),
    T.NO_JOB: (0, False), T.JOB_ASSIGN: (2, True), T.WORK_STATUS: (3, False),
    T.WORK_COMPLETE: (1, True), T.WORK_FAIL: (1, False), T.GET_STATUS: (1, False),
    T.ECHO_REQ: (0, True), T.ECHO_RES: (0, True), T.SUBMIT_JOB_BG: (2, True),
    T.ERROR: (2, False), T.STATUS_RES: (5, False), T.SUBMIT_JOB_HIGH: (2, True),
    T.SET_CLIENT_ID: (1, False), T.CAN_DO_TIMEOUT: (2, False),
    T.ALL_YOURS: (0, False), T.WORK_EXCEPTION: (1, True), T.OPTION_REQ: (1, False),
    T.OPTION_RES: (1, False), T.WORK_DATA: (1, True), T.WORK_WARNING: (1, True),
    T.GRAB_JOB_UNIQ: (0, False), T.JOB_ASSIGN_UNIQ: (3, True),
    T.SUBMIT_JOB_HIGH_BG: (2, True), T.SUBMIT_JOB_LOW: (2, True),
    T.SUBMIT_JOB_LOW_BG: (2, True), T.SUBMIT_JOB_SCHED: (7, True),
    T.SUBMIT_JOB_EPOCH: (3, True), T.SUBMIT_REDUCE_JOB: (4, True),
    T.SUBMIT_REDUCE_JOB_BACKGROUND: (4, True), T.GRAB_JOB_ALL: (0, False),
    T.JOB_ASSIGN_ALL: (4, True), T.GET_STATUS_UNIQUE: (1, False),
    T.STATUS_RES_UNIQUE: (6, False),
}

# Types a server accepts; every other valid type gets ERROR INVALID_COMMAND.
REQUEST_TYPES = frozenset({
    T.CAN_DO, T.CANT_DO, T.RESET_ABILITIES, T.PRE_SLEEP, T.SUBMIT_JOB,
    T.GRAB_JOB, T.WORK_STATUS, T.WORK_COMPLETE, T.WORK_FAIL, T.GET_STATUS,
    T.ECHO_REQ, T.SUBMIT_JOB_BG, T.SUBMIT_JOB_HIGH, T.SET_CLIENT_ID,
    T.CAN_DO_TIMEOUT, T.WORK_EXCEPTION, T.OPTION_REQ, T.WORK_DATA,
    T.WORK_WARNING, T.GRAB_JOB_UNIQ, T.SUBMIT_JOB_HIGH_BG, T.SUBMIT_JOB_LOW,
    T.SUBMIT_JOB_LOW_BG, T.SUBMIT_JOB_EPOCH, T.SUBMIT_REDUCE_JOB,
    T.SUBMIT_REDUCE_JOB_BACKGROUND, T.GRAB_JOB_ALL, T.GET_STATUS_UNIQUE,
})

# Types a client or worker accepts from a server (\0RES).
RESPONSE_TYPES = frozenset({
    T.NOOP, T.JOB_CREATED, T.NO_JOB, T.JOB_ASSIGN, T.WORK_STATUS,
    T.WORK_COMPLETE, T.WORK_FAIL, T.ECHO_RES, T.ERROR, T.STATUS_RES,
    T.WORK_EXCEPTION, T.OPTION_RES, T.WORK_DATA, T.WORK_WARNING,
    T.JOB_ASSIGN_UNIQ, T.JOB_ASSIGN_ALL, T.STATUS_RES_UNIQUE,
})

HAS_DATA = frozenset(t for t, (_, data) in ARGS.items() if data)


# bytes.split's maxsplit for each type's payload; -1: no arguments at all.
_SPLITS = {int(t): argc if data else argc - 1 for t, (argc, data) in ARGS.items()}


def split_args(ptype: int, body: bytes) -> tuple:
    """Split a payload the decoder has already validated into its arguments
    (for HAS_DATA types the last element is the data)."""
    n = _SPLITS[ptype]
    if n < 0:
        return ()
    return tuple(body.split(b"\0", n))
