"""What a client makes of a job's packets and arguments, without sockets:
JSON in and out, a dict or set refused as data, the reason of a failure,
a background job's missing result, and the worker side's JSON functions,
failure reasons, tracebacks and overrun runs."""
import logging
import time

import orjson
import pytest

from mpgearman.client.errors import GearmanError, JobException, JobFailed
from mpgearman.client.jobs import BARE_FAIL, WorkWarning
from mpgearman.client.registry import FunctionRegistry
from mpgearman.client.session import Session
from mpgearman.client.submit import new_job
from mpgearman.client.workerjob import WorkerJob, outcome_of_exception, overrun
from mpgearman.client.workersession import Assignment
from mpgearman.protocol.encoder import encode
from mpgearman.protocol.packets import PacketType as T


def created(job, *packets):
    """A session that submitted `job`, got JOB_CREATED H:1, then `packets`."""
    session = Session("s:1")
    session.submit(job)
    wire = [encode(T.OPTION_RES, b"exceptions"), encode(T.JOB_CREATED, b"H:1")]
    wire += [encode(t, b"H:1", *args) for t, *args in packets]
    session.receive(b"".join(wire))
    return job


@pytest.mark.parametrize("data", [{"user": 1, "id": 2}, {"a", "b"}, frozenset("ab")])
def test_a_dict_or_set_is_not_job_data(data):
    with pytest.raises(TypeError, match="json="):
        new_job("fn", data)


def test_json_is_encoded_and_the_result_decoded():
    job = new_job("fn", json={"user": 1, "ids": [2, 3]})
    assert b"".join(job.payload.chunks()) == b'{"user":1,"ids":[2,3]}'
    created(job, (T.WORK_COMPLETE, b'{"ok":true}'))
    assert job.outcome() == {"ok": True}
    assert new_job("fn", json=None).payload.size == 4          # null, not "no data"
    with pytest.raises(TypeError):
        new_job("fn", b"data", json=[1])
    with pytest.raises(TypeError):
        new_job("fn", json=object())


def test_a_result_that_is_not_json_is_a_clear_error():
    job = created(new_job("fn", json=1), (T.WORK_COMPLETE, b"not json"))
    with pytest.raises(GearmanError, match="not JSON"):
        job.outcome()


def test_workfailed_reason_reaches_jobfailed():
    job = new_job("fn")
    job.drop_events()      # as result() does: the reason must survive it
    created(job, (T.WORK_WARNING, b"WorkFailed: no such user"), (T.WORK_FAIL,))
    with pytest.raises(JobFailed) as info:
        job.outcome()
    assert info.value.reason == "no such user"
    assert str(info.value) == "job H:1 (fn) failed: no such user"


def test_a_bare_fail_says_what_it_may_mean_and_warnings_stay_events():
    job = created(new_job("fn"), (T.WORK_WARNING, b"careful"), (T.WORK_FAIL,))
    assert list(job.events) == [WorkWarning(b"careful")]
    with pytest.raises(JobFailed) as info:
        job.outcome()
    assert info.value.reason == BARE_FAIL and "retries" in str(info.value)


def told(job, *packets):
    """As created(), from a server that accepted OPTION_REQ fail_reasons."""
    session = Session("s:1")
    session.submit(job)
    wire = [encode(T.OPTION_RES, b"exceptions"), encode(T.OPTION_RES, b"fail_reasons"),
            encode(T.JOB_CREATED, b"H:1")]
    session.receive(b"".join(wire + [encode(t, b"H:1", *args) for t, *args in packets]))
    assert session.fail_reasons
    return job


@pytest.mark.parametrize("keep", [True, False])
def test_the_servers_retries_warning_is_the_reason_not_an_event(keep):
    job = new_job("fn")
    if not keep:
        job.drop_events()
    why = b"retries exhausted after 3 attempts: worker lost"
    told(job, (T.WORK_WARNING, b"careful"), (T.WORK_WARNING, why), (T.WORK_FAIL,))
    assert list(job.events) == ([WorkWarning(b"careful")] if keep else [])
    with pytest.raises(JobFailed) as info:
        job.outcome()
    assert (info.value.reason, info.value.cause) == (why.decode(), "retries")
    assert str(info.value) == f"job H:1 (fn) failed: {why.decode()}"


def test_a_bare_fail_from_a_server_with_fail_reasons_is_the_workers():
    job = told(new_job("fn"), (T.WORK_FAIL,))
    with pytest.raises(JobFailed) as info:
        job.outcome()
    assert (info.value.reason, info.value.cause) == ("the worker failed it", "worker")


def test_causes_of_workfailed_cancel_and_an_unexplained_fail():
    for packets, cause in [(((T.WORK_WARNING, b"WorkFailed: no"), (T.WORK_FAIL,)), "worker"),
                           (((T.WORK_FAIL,),), "unknown")]:
        with pytest.raises(JobFailed) as info:
            created(new_job("fn"), *packets).outcome()
        assert info.value.cause == cause
    job = created(new_job("fn"))
    job.on_cancelled()
    with pytest.raises(JobFailed) as info:
        job.outcome()
    assert info.value.cause == "cancelled"


def test_a_server_refusing_fail_reasons_leaves_the_submission_alone():
    """gearmand answers the unknown option with ERROR: that is the option's
    answer, not the submission's, and the client falls back quietly."""
    session = Session("s:1")
    job = new_job("fn")
    session.submit(job)
    session.receive(encode(T.OPTION_RES, b"exceptions")
                    + encode(T.ERROR, b"UNKNOWN_OPTION", b"Server does not recognize given option")
                    + encode(T.JOB_CREATED, b"H:1") + encode(T.WORK_FAIL, b"H:1"))
    assert session.failure is None and not session.fail_reasons
    with pytest.raises(JobFailed) as info:
        job.outcome()
    assert (info.value.reason, info.value.cause) == (BARE_FAIL, "unknown")


def test_exception_text_is_kept():
    job = created(new_job("fn"), (T.WORK_EXCEPTION, b"KeyError: 'x'"))
    with pytest.raises(JobException, match="KeyError: 'x'"):
        job.outcome()


def test_a_background_job_has_no_result():
    job = created(new_job("fn", b"x", background=True))
    assert job.done and job.handle == "H:1"
    with pytest.raises(GearmanError, match="background job"):
        job.outcome()
    with pytest.raises(GearmanError, match="background job"):
        job.check_waitable()


def test_cancelled_job_fails_with_reason_cancelled():
    job = created(new_job("fn"))
    job.on_cancelled()
    with pytest.raises(JobFailed) as info:
        job.outcome()
    assert info.value.reason == "cancelled"


def test_the_fail_of_a_cancel_in_flight_says_cancelled():
    job = new_job("fn")
    job.cancelling = True      # the server's WORK_FAIL may beat its reply "OK"
    created(job, (T.WORK_FAIL,))
    with pytest.raises(JobFailed) as info:
        job.outcome()
    assert info.value.reason == "cancelled"


def assignment(data=b"", function="fn"):
    a = Assignment(b"H:7", function.encode(), b"")
    a.data, a.size = data, len(data)
    return a


def test_json_worker_function_takes_and_returns_objects():
    reg = FunctionRegistry()

    @reg.function("add", json=True)
    def add(numbers):
        return {"sum": sum(numbers)}
    assert add([1, 2]) == {"sum": 3}           # the decorator returns it unchanged
    job = WorkerJob(assignment(b"[1, 2, 3]"), lambda cb: None)
    assert orjson.loads(reg.lookup("add")(job)) == {"sum": 6}
    assert job.json == [1, 2, 3]


def test_worker_exception_is_logged_with_its_traceback(caplog):
    job = WorkerJob(assignment(), lambda cb: None)
    try:
        raise ValueError("bad input")
    except ValueError as exc:
        with caplog.at_level(logging.ERROR, "mpgearman.client"):
            outcome = outcome_of_exception(exc, job)
    assert outcome == ("exception", "ValueError: bad input")
    [record] = caplog.records
    assert "H:7" in record.getMessage() and record.exc_info[0] is ValueError
    assert "raise ValueError" in caplog.text     # the traceback itself


def test_a_run_beyond_its_timeout_is_flagged_and_dropped(caplog):
    job = WorkerJob(assignment(), lambda cb: None, timeout=0.2)
    assert job.timeout == 1.0                  # servers raise it to 1 s
    assert not job.expired and 0.9 < job.time_left() <= 1.0
    assert not overrun(job, ("complete", None))
    job.started -= 1.5
    assert job.expired and job.time_left() == 0.0
    with caplog.at_level(logging.WARNING, "mpgearman.client"):
        assert overrun(job, ("fail", None))
    assert "beyond its 1 s timeout" in caplog.text and "dropped" in caplog.text
    untimed = WorkerJob(assignment(), lambda cb: None)
    untimed.started = time.monotonic() - 3600
    assert not untimed.expired and untimed.time_left() is None
