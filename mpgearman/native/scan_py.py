"""Pure-Python twin of the C framing scan (_scan, scan.c): same function,
same results. It owns nothing but the walk over complete small \\0REQ
packets; everything else is the decoder's slow path."""
import struct

_HEADER = struct.Struct(">4sII")
_REQ = b"\0REQ"
_MAX_TYPE = 42


def scan_packets(buf, pos: int, max_small: int):
    """Walk consecutive packets from `pos` while each has a full header,
    magic \\0REQ, 1 <= type <= 42, size <= max_small and a complete body.

    Returns ([(type, body_start, body_end), ...], stop) where stop is the
    first position where one of those conditions failed.
    """
    view = memoryview(buf)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    if pos < 0:
        raise ValueError("pos must not be negative")
    frames = []
    end_of_buf = view.nbytes
    unpack = _HEADER.unpack_from
    append = frames.append
    while end_of_buf - pos >= 12:
        magic, ptype, size = unpack(view, pos)
        if magic != _REQ or not 1 <= ptype <= _MAX_TYPE or size > max_small:
            break
        start = pos + 12
        end = start + size
        if end > end_of_buf:
            break
        append((ptype, start, end))
        pos = end
    view.release()
    return frames, pos
