"""wire.Outbox: small chunks leave in one batch (one send()), big ones
alone and uncopied, and the order of the bytes never changes."""
from mpgearman.client.wire import Outbox


def drain(box, limit):
    out = []
    while (chunk := box.next_batch(limit)) is not None:
        out.append(bytes(chunk))
    return out


def test_small_chunks_are_joined_in_order():
    box = Outbox()
    box.append(b"head1")
    box.append(iter([memoryview(b"body1")]))
    box.append(b"grab")
    assert drain(box, 100) == [b"head1body1grab"]


def test_a_chunk_that_does_not_fit_starts_the_next_batch():
    big = memoryview(b"B" * 50)
    box = Outbox()
    box.extend([b"a" * 10, iter([big, b"tail"]), b"z"])
    batches = []
    while (chunk := box.next_batch(40)) is not None:
        batches.append(chunk)
    assert [bytes(c) for c in batches] == [b"a" * 10, b"B" * 50, b"tailz"]
    assert batches[1] is big                 # sent as it is, not copied
    assert box.next_batch(40) is None and not box
