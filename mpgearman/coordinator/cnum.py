"""C number parsing, as gearmand applies it to protocol and admin fields.

Owns: strtol/atoi semantics on bytes (64-bit long, glibc atoi = (int)strtol).
Must not: know about packets or jobs; callers decide what a value means.
"""
LONG_MAX = (1 << 63) - 1
LONG_MIN = -(1 << 63)
_SPACE = b" \t\n\v\f\r"
_DIGITS = b"0123456789"


def strtol(text: bytes) -> tuple[int, bool]:
    """(value, overflowed) of C strtol(text, NULL, 10): leading white space,
    an optional sign, then digits up to the first other byte; no digits -> 0;
    out of range -> LONG_MAX/LONG_MIN with overflowed=True (errno ERANGE)."""
    s = text.lstrip(_SPACE)
    neg = s[:1] == b"-"
    if s[:1] in (b"-", b"+"):
        s = s[1:]
    n = len(s) - len(s.lstrip(_DIGITS))
    digits = s[:n].lstrip(b"0")
    if not digits:
        return 0, False
    # More than 19 significant digits cannot fit; int() on them would also
    # be slow (and capped by CPython) for absurd inputs.
    value = int(digits) if len(digits) <= 19 else LONG_MAX + 1
    if neg:
        value = -value
    if value > LONG_MAX:
        return LONG_MAX, True
    if value < LONG_MIN:
        return LONG_MIN, True
    return value, False


def atoi(text: bytes) -> int:
    """glibc atoi: (int)strtol, i.e. the low 32 bits as a signed int."""
    value = strtol(text)[0] & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def atoi_u32(text: bytes) -> int:
    """(uint32_t)atoi(text), as gearmand stores WORK_STATUS numbers."""
    return strtol(text)[0] & 0xFFFFFFFF
