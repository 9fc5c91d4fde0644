"""The counters mapping: header check, process lines, function slots and
the overflow bucket; what a reader sees is what the writers wrote."""
import pytest

from mpgearman.ipc import layout as L
from mpgearman.ipc.counters import FUNCTION_FIELDS, OVERFLOW_NAME, Counters, CountersError


@pytest.fixture
def counters():
    c = Counters.create(acceptors=2, slots=4).check()
    yield c
    c.close()


def test_fresh_mapping_has_only_the_overflow_bucket(counters):
    assert counters.acceptors == 2
    assert counters.functions() == [(OVERFLOW_NAME, dict.fromkeys(FUNCTION_FIELDS, 0))]
    assert counters.processes() == []
    assert counters.acceptor_figures() == []     # no acceptor has started
    assert counters.overflowed() == 0


def test_claimed_slots_carry_name_and_values(counters):
    assert counters.claim_slot(b"reverse") == 1
    assert counters.claim_slot(b"resize") == 2
    counters.write_function(2, range(1, len(FUNCTION_FIELDS) + 1))
    names = [name for name, _ in counters.functions()]
    assert names == [OVERFLOW_NAME, b"reverse", b"resize"]
    assert counters.functions()[2][1] == dict(zip(FUNCTION_FIELDS, range(1, len(FUNCTION_FIELDS) + 1)))
    assert counters.functions()[1][1] == dict.fromkeys(FUNCTION_FIELDS, 0)


def test_full_table_long_names_and_the_bucket_name_go_to_the_bucket(counters):
    assert [counters.claim_slot(n) for n in (b"a", b"b", b"c")] == [1, 2, 3]
    assert counters.claim_slot(b"d") == L.CTR_OVERFLOW_SLOT
    fresh = Counters.create(acceptors=1, slots=8)
    assert fresh.claim_slot(b"x" * (L.CTR_NAME_MAX + 1)) == L.CTR_OVERFLOW_SLOT
    assert fresh.claim_slot(b"x" * L.CTR_NAME_MAX) == 1
    assert fresh.claim_slot(OVERFLOW_NAME) == L.CTR_OVERFLOW_SLOT
    assert fresh.claim_slot(b"") == L.CTR_OVERFLOW_SLOT
    assert fresh.functions()[1][0] == b"x" * L.CTR_NAME_MAX
    fresh.close()


def test_process_lines(counters):
    counters.start_process(L.CTR_SUPERVISOR, 100)
    counters.start_process(L.CTR_COORDINATOR, 101)
    counters.start_process(L.CTR_FIRST_ACCEPTOR + 1, 103)
    writer = counters.acceptor_writer(1)
    writer.connections(accepted=7, open_now=3)
    writer.add_spooled(1000)
    writer.add_spooled(24)
    assert counters.processes() == [("supervisor", 0, 100), ("coordinator", 0, 101),
                                    ("acceptor", 1, 103)]
    assert counters.acceptor_figures() == [(1, 7, 3, 1024)]
    # A restarted acceptor starts from zero; a dead one (pid 0) is not listed.
    counters.start_process(L.CTR_FIRST_ACCEPTOR + 1, 0)
    assert counters.acceptor_figures() == []
    counters.start_process(L.CTR_FIRST_ACCEPTOR + 1, 104)
    assert counters.acceptor_figures() == [(1, 0, 0, 0)]
    # The coordinator's restart does not forget the slots in use.
    counters.claim_slot(b"f")
    counters.start_process(L.CTR_COORDINATOR, 105)
    assert [n for n, _ in counters.functions()] == [OVERFLOW_NAME, b"f"]


def test_a_reader_in_another_mapping_of_the_same_memory_sees_the_writes(counters):
    counters.claim_slot(b"fn")
    counters.write_function(1, [5] * len(FUNCTION_FIELDS))
    reader = Counters(counters.mem).check()
    assert reader.functions()[1] == (b"fn", dict.fromkeys(FUNCTION_FIELDS, 5))


def test_check_refuses_other_memory():
    with pytest.raises(CountersError, match="magic"):
        Counters(bytearray(4096)).check()
    c = Counters.create(acceptors=1, slots=2)
    memoryview(c.mem).cast("B")[L.CTR_VERSION_OFF] = 99
    with pytest.raises(CountersError, match="layout 99"):
        c.check()
    c.close()


def test_too_few_slots():
    with pytest.raises(ValueError):
        Counters.create(acceptors=1, slots=1)


def test_spool_in_use_is_the_jobs_plus_the_bodies_being_written(counters):
    a0, a1 = counters.acceptor_writer(0), counters.acceptor_writer(1)
    assert counters.spool_in_use() == 0
    counters.set_spool_held(1000)
    a0.writing(300)
    a1.writing(20)
    assert counters.spool_in_use() == 1320 and a1.spool_in_use() == 1320
    counters.start_process(L.CTR_FIRST_ACCEPTOR + 0, 0)     # acceptor 0 is gone
    assert counters.spool_in_use() == 1020
