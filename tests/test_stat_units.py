"""`mpgearman stat` without a server: address parsing, snapshots and rates
from synthetic samples, the text table and the Nagios check logic."""
import pytest

from mpgearman.stat import render
from mpgearman.stat.probe import parse_server
from mpgearman.stat.snapshot import document


@pytest.mark.parametrize("text,want", [
    ("127.0.0.1", ("127.0.0.1", 4730)),
    ("gear.example:4731", ("gear.example", 4731)),
    ("[::1]:4732", ("::1", 4732)),
    ("[::1]", ("::1", 4730)),
    ("::1", ("::1", 4730)),
])
def test_parse_server(text, want):
    assert parse_server(text) == want


@pytest.mark.parametrize("text", ["", "host:", "host:x", "host:0", "host:70000", ":4730"])
def test_parse_server_refuses(text):
    with pytest.raises(ValueError):
        parse_server(text)


def sample(at, submitted, cpu, functions=None, stats=True):
    fns = functions if functions is not None else {
        "f": {"queued": 3, "queued_by_priority": {"high": 1, "normal": 2, "low": 0},
              "running": 1, "workers": 2}}
    raw = None
    if stats:
        raw = {"uptime": "3725.5", "jobs_submitted": str(submitted), "jobs_completed": "4",
               "connections": "3", "connections_accepted": "9",
               "process.supervisor.0.pid": "10", "process.supervisor.0.cpu_seconds": "1.00",
               "process.supervisor.0.rss_bytes": "1048576",
               "process.acceptor.1.pid": "12", "process.acceptor.1.cpu_seconds": str(cpu),
               "process.acceptor.1.rss_bytes": "2097152"}
    return {"at": at, "functions": fns, "worker_connections": 2, "stats": raw,
            "version": "0.1.0" if stats else "1.1.20+ds"}


def test_rates_and_cpu_share_from_two_samples():
    doc = document("h:1", sample(12.0, 150, "2.50"), sample(10.0, 50, "1.50"))
    assert doc["rates"] == {"submitted": 50.0, "completed": 0.0, "failed": 0.0,
                            "exceptions": 0.0, "requeued": 0.0}
    assert doc["interval_seconds"] == 2.0
    assert [(p["role"], p["index"], p["cpu_percent"]) for p in doc["processes"]] == [
        ("supervisor", 0, 0.0), ("acceptor", 1, 50.0)]
    assert doc["totals"] == {"functions": 1, "queued": 3, "running": 1, "workers": 2,
                             "queued_by_priority": {"high": 1, "normal": 2, "low": 0}}
    text = render.as_text(doc)
    assert "up 1h02m05s, 3 connections (9 accepted)" in text
    assert "jobs/s over 2.0 s: 50.0 submitted" in text
    assert "acceptor-1" in text and "2.0 MiB" in text


def test_the_data_plane_is_in_the_document_and_noted_when_pure():
    cur = sample(12.0, 150, "2.50")
    assert document("h:1", cur)["implementation"] is None      # an older server
    cur["stats"]["implementation"] = "c"
    doc = document("h:1", cur)
    assert doc["implementation"] == "c"
    assert "data plane" not in render.as_text(doc)
    cur["stats"]["implementation"] = "python"
    doc = document("h:1", cur)
    assert doc["implementation"] == "python"
    assert "on h:1 (pure-Python data plane), up 1h02m05s" in render.as_text(doc).splitlines()[0]
    assert document("h:1", sample(12.0, 0, "0", stats=False))["implementation"] is None


def test_the_coordinator_core_is_in_the_document():
    cur = sample(12.0, 150, "2.50")
    assert document("h:1", cur)["core"] is None      # an older server
    cur["stats"]["core"] = "c"
    assert document("h:1", cur)["core"] == "c"
    assert document("h:1", sample(12.0, 0, "0", stats=False))["core"] is None


def test_a_restarted_process_has_no_cpu_share_and_counters_never_go_back():
    earlier = sample(10.0, 500, "1.50")
    earlier["stats"]["process.acceptor.1.pid"] = "11"
    doc = document("h:1", sample(11.0, 20, "0.10"), earlier)
    assert doc["rates"]["submitted"] == 0.0
    assert doc["processes"][1]["cpu_percent"] is None


def test_gearmand_document_has_no_mpgearman_figures():
    doc = document("h:1", sample(1.0, 0, "0", stats=False))
    assert doc["kind"] == "gearmand"
    assert all(doc[k] is None for k in ("uptime_seconds", "jobs", "rates", "processes",
                                        "connections"))
    assert render.as_text(doc).splitlines()[0] == "gearmand 1.1.20+ds on h:1"


def test_table_without_priorities():
    fns = {"long_function_name": {"queued": 1, "queued_by_priority": None, "running": 0,
                                  "workers": 0}}
    lines = render.as_text(document("h:1", sample(1.0, 0, "0", fns, stats=False))).splitlines()
    assert lines[2].split() == ["FUNCTION", "QUEUED", "RUNNING", "WORKERS"]
    assert lines[3].split() == ["long_function_name", "1", "0", "0"]


def doc_with(queued, workers):
    return document("h:1", sample(1.0, 0, "0", {"f": {
        "queued": queued, "queued_by_priority": None, "running": 0, "workers": workers}}))


@pytest.mark.parametrize("queued,workers,limits,state", [
    (10, 5, (10, 20, None, None), render.OK),            # at the limit is fine
    (11, 5, (10, 20, None, None), render.WARNING),
    (21, 5, (10, 20, None, None), render.CRITICAL),
    (0, 2, (None, None, 2, 1), render.OK),
    (0, 1, (None, None, 2, 1), render.WARNING),
    (0, 0, (None, None, 2, 1), render.CRITICAL),
    (11, 0, (10, None, None, 1), render.CRITICAL),       # the worse of the two
])
def test_check_states(queued, workers, limits, state):
    got, line = render.check(doc_with(queued, workers), "f", *limits)
    assert got == state
    assert line.startswith(f"MPGEARMAN {render.STATE_NAMES[state]} - function f: "
                           f"{queued} jobs queued, {workers} workers")


def test_check_of_a_function_the_server_does_not_know_is_unknown():
    state, line = render.check(doc_with(0, 3), "missing", None, None, 1, None)
    assert state == render.UNKNOWN
    assert line == "MPGEARMAN UNKNOWN - function missing is unknown to h:1"


def test_check_of_several_servers_sums_their_figures():
    docs = [document(f"h:{i}", sample(1.0, 0, "0", {"f": {
        "queued": 4, "queued_by_priority": None, "running": 0, "workers": 1}}))
        for i in (1, 2)]
    state, line = render.check(render.merged(docs), "f", 7, None, None, None)
    assert state == render.WARNING
    assert line.startswith("MPGEARMAN WARNING - function f: 8 jobs queued, 2 workers")
    state, line = render.check(render.merged(docs), None, None, None, None, 5)
    assert (state, line.split(" - ")[1].split(" (")[0]) == (
        render.CRITICAL, "8 jobs queued, 4 workers")


def test_check_of_several_servers_judges_the_oldest_job_of_any():
    docs = [document(f"h:{i}", sample(1.0, 0, "0", {"f": {
        "queued": 1, "queued_by_priority": None, "running": 0, "workers": 1,
        "oldest_age_seconds": age}})) for i, age in ((1, 2.0), (2, 40.0))]
    state, line = render.check(render.merged(docs), "f", None, None, None, None, 30, 60)
    assert state == render.WARNING and "oldest job waited > 30 s" in line
    state, _ = render.check(render.merged(docs), None, None, None, None, None, None, 10)
    assert state == render.CRITICAL


def test_json_totals_hold_no_null():
    """No function yet on a server that answers prioritystatus: zeros;
    a server without prioritystatus: the key is left out, not null."""
    raw = dict(sample(1.0, 0, "0", {}), priorities=True)
    totals = document("h:1", raw)["totals"]
    assert totals["queued_by_priority"] == {"high": 0, "normal": 0, "low": 0}
    assert None not in totals.values()
    raw = dict(sample(1.0, 0, "0", {"f": {"queued": 1, "queued_by_priority": None,
                                          "running": 0, "workers": 0}}), priorities=False)
    totals = document("h:1", raw)["totals"]
    assert "queued_by_priority" not in totals and None not in totals.values()
    assert "HIGH" not in render.as_text(document("h:1", raw))


def test_text_fits_a_short_terminal_and_keeps_its_header():
    fns = {f"fn{i:02d}": {"queued": i, "queued_by_priority": None, "running": 0,
                          "workers": 1} for i in range(40)}
    doc = document("h:1", sample(1.0, 0, "0", fns))
    full = render.as_text(doc).splitlines()
    short = render.as_text(doc, 15).splitlines()
    assert len(full) > 40 and len(short) == 15
    assert short[0] == full[0] and short[0].startswith("mpgearman 0.1.0 on h:1")
    assert short[3].startswith("FUNCTION") and short[-1].startswith("TOTAL (40)")
    assert short[-2].startswith("... 31 more functions")
    assert render.as_text(doc, 200) == "\n".join(full)


def test_lines_that_do_not_parse_are_reported_and_the_rest_is_read():
    """A server that prints names raw (gearmand) breaks a line at a newline
    in a name: stat reads every line it can and lists the others."""
    from mpgearman.stat.probe import parse_prioritystatus, parse_status, parse_workers
    status = [b"good\t4\t1\t2", b"broken", b"name\t0\t0\t1", b"x\ty\tz\tw", b"\xff\t0\t0\t0"]
    functions, bad = parse_status(status)
    assert functions == {
        "good": {"queued": 3, "queued_by_priority": None, "running": 1, "workers": 2},
        "name": {"queued": 0, "queued_by_priority": None, "running": 0, "workers": 1},
        "\\xff": {"queued": 0, "queued_by_priority": None, "running": 0, "workers": 0}}
    assert bad == [{"command": "status", "line": "broken"},
                   {"command": "status", "line": "x\ty\tz\tw"}]
    bad = parse_prioritystatus([b"good\t1\t2\t0\t2", b"broken", b"name\t0\t0"], functions)
    assert bad == [{"command": "prioritystatus", "line": "broken"},
                   {"command": "prioritystatus", "line": "name\t0\t0"}]
    assert functions["good"]["queued_by_priority"] == {"high": 1, "normal": 2, "low": 0}

    assert parse_workers([b"12 127.0.0.1 - : good name", b"broken", b"13 ::1 my id :",
                          b"14 10.0.0.1 - : a b"]) == (
        2, [{"command": "workers", "line": "broken"}])

    raw = sample(1.0, 0, "0", functions, stats=False)
    raw["unreadable"] = [{"command": "status", "line": "broken"}] * 2
    doc = document("h:1", raw)
    assert doc["unreadable"] == raw["unreadable"]
    assert doc["totals"]["functions"] == 3 and doc["totals"]["queued"] == 3
    text = render.as_text(doc)
    assert "warning: 2 lines of the server's answers could not be read" in text
    assert "status: 'broken'" in text
    state, line = render.check(doc, "good", 2, None, None, None)
    assert state == render.WARNING
    assert line.startswith("MPGEARMAN WARNING - function good: 3 jobs queued, 2 workers "
                           "(queued > 2), 2 unreadable lines |")
    assert render.check(document("h:1", sample(1.0, 0, "0")), None, None, None, None, None)[1] \
        .startswith("MPGEARMAN OK - 3 jobs queued, 2 workers |")


def doc_aged(age, kind_stats=True):
    fn = {"queued": 1, "queued_by_priority": None, "running": 0, "workers": 0,
          "oldest_age_seconds": age}
    return document("h:1", sample(1.0, 0, "0", {"f": fn}, stats=kind_stats))


@pytest.mark.parametrize("age,limits,state", [
    (None, (10, 20), render.OK),            # nothing queued
    (10.0, (10, 20), render.OK),
    (10.5, (10, 20), render.WARNING),
    (21.0, (10, 20), render.CRITICAL),
    (21.0, (None, 20), render.CRITICAL),
])
def test_check_oldest_job_age(age, limits, state):
    for function in ("f", None):
        got, line = render.check(doc_aged(age), function, None, None, None, None, *limits)
        assert got == state, line
        assert f"oldest waited {age or 0:.1f} s" in line
        assert f" oldest={age or 0:.3f}s;{limits[0] or ''};{limits[1]};0" in line
    if state == render.CRITICAL:
        assert "(oldest job waited > 20 s)" in line


def test_check_oldest_job_age_of_gearmand_is_unknown():
    state, line = render.check(doc_aged(None, kind_stats=False), "f", None, None, None, None,
                               None, 5)
    assert state == render.UNKNOWN
    assert line == "MPGEARMAN UNKNOWN - gearmand does not tell how long jobs have waited"


def test_p95_over_the_interval_and_the_latency_columns():
    def hist(counts, total):
        running, buckets = 0, {}
        for bound, n in zip(["0.1", "1.0", "+Inf"], counts):
            running += n
            buckets[bound] = running
        return {"count": running, "sum_seconds": total, "buckets": buckets}

    def fn(wait, run, age):
        return {"queued": 1, "queued_by_priority": {"high": 0, "normal": 1, "low": 0},
                "running": 1, "workers": 2, "busy_workers": 1, "idle_workers": 1,
                "epoch_waiting": 0, "oldest_age_seconds": age,
                "wait_seconds": wait, "run_seconds": run}
    before = sample(10.0, 0, "1", {"f": fn(hist([100, 0, 0], 1), hist([0, 0, 0], 0), 2.0)})
    after = sample(11.0, 0, "1", {"f": fn(hist([100, 10, 0], 5), hist([0, 0, 4], 90), 3.25)})
    doc = document("h:1", after, before)
    f = doc["functions"]["f"]
    assert f["wait_p95_seconds"] == pytest.approx(0.955)     # the 10 jobs of the interval
    assert f["run_p95_seconds"] == 1.0       # beyond the last bound: that bound
    assert doc["totals"]["oldest_age_seconds"] == 3.25
    table = [line.split() for line in render.as_text(doc).splitlines()
             if line.startswith(("FUNCTION", "f ", "TOTAL"))]
    assert table[0][-5:] == ["BUSY", "IDLE", "OLDEST", "WAIT95", "RUN95"]
    assert table[1][-5:] == ["1", "1", "3.25s", "0.955s", "1s"]
    assert table[2][-1] == "3.25s"
    alone = document("h:1", after)            # one sample: since the server started
    # rank 104.5 of 110: 4.5 of the 10 jobs between 0.1 and 1.0 s
    assert alone["functions"]["f"]["wait_p95_seconds"] == pytest.approx(0.505)


def test_one_stats_answer_gives_the_whole_sample():
    from mpgearman.stat.probe import from_stats
    lines = [b"version 0.1.0", b"jobs_queued 3", b"worker_connections 2",
             b"latency_buckets 0.1,1.0",
             b"function\tsay hi\\x0a\t1\t2\t0\t1\t3\t1\t1\t1\t4.500\t2,1,0,0.700000\t0",
             b"function\tbroken\t1"]
    got = from_stats(lines)
    assert got["version"] == "0.1.0" and got["worker_connections"] == 2
    assert got["stats"]["jobs_queued"] == "3"
    assert got["functions"] == {"say hi\\x0a": {
        "queued": 3, "queued_by_priority": {"high": 1, "normal": 2, "low": 0},
        "running": 1, "workers": 3, "busy_workers": 1, "idle_workers": 1,
        "epoch_waiting": 1, "oldest_age_seconds": 4.5,
        "wait_seconds": {"count": 3, "sum_seconds": 0.7,
                         "buckets": {"0.1": 2, "1.0": 3, "+Inf": 3}},
        "run_seconds": {"count": 0, "sum_seconds": 0.0,
                        "buckets": {"0.1": 0, "1.0": 0, "+Inf": 0}}}}
    assert got["unreadable"] == [{"command": "stats", "line": "function\tbroken\t1"}]


def test_totals_of_an_mpgearman_hold_no_null_age():
    """Nothing queued: the oldest age in the totals is 0 (JSON has no null
    there), shown as `-` in the table like a function's."""
    fn = {"queued": 0, "queued_by_priority": {"high": 0, "normal": 0, "low": 0},
          "running": 0, "workers": 1, "oldest_age_seconds": None}
    cur = {"at": 1.0, "functions": {"f": fn}, "stats": None, "worker_connections": 1,
           "version": "x", "priorities": True, "scheduled": None}
    doc = document("h:1", cur)
    assert doc["totals"]["oldest_age_seconds"] == 0.0
    assert None not in doc["totals"].values()
