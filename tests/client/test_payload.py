"""payload.py: every accepted data form becomes a restartable Payload."""
import io
import os

import pytest

from mpgearman.client.errors import GearmanError
from mpgearman.client.payload import CHUNK, make_payload


def body(payload):
    return b"".join(bytes(c) for c in payload.chunks())


def test_bytes_and_str():
    assert body(make_payload(b"abc")) == b"abc"
    assert body(make_payload("é")) == "é".encode()
    assert make_payload(bytearray(b"xy")).size == 2


def test_path_is_read_by_offset_and_restartable(tmp_path):
    path = tmp_path / "in"
    data = os.urandom(CHUNK * 2 + 5)
    path.write_bytes(data)
    payload = make_payload(path)
    assert payload.size == len(data)
    assert body(payload) == data and body(payload) == data
    payload.close()


def test_open_file_from_its_position(tmp_path):
    path = tmp_path / "in"
    path.write_bytes(b"0123456789")
    with open(path, "rb") as f:
        f.seek(4)
        payload = make_payload(f)
        assert payload.size == 6 and body(payload) == b"456789"
        assert f.tell() == 4


def test_iterable_and_pipe_are_spooled():
    payload = make_payload(iter([b"ab", b"cd", "e"]))
    assert payload.size == 5 and body(payload) == body(payload) == b"abcde"
    r, w = os.pipe()
    os.write(w, b"piped")
    os.close(w)
    with os.fdopen(r, "rb") as f:
        payload = make_payload(f)
    assert body(payload) == b"piped"
    assert make_payload(io.BytesIO(b"mem")).size == 3


@pytest.mark.parametrize("bad", [123, [1, 2], io.StringIO("text")])
def test_bad_data_is_one_clear_error(bad):
    with pytest.raises(GearmanError) as info:
        make_payload(bad)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(GearmanError, match="cannot read job data"):
        make_payload(tmp_path / "nope")
