"""Snapshot documents (snapshot.py) -> text: the human table, the JSON
document, and the one-line Nagios/Icinga check result.

Must not: talk to a server or exit; the command decides what to print and
the exit code from what is returned here.
"""
import orjson

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
CHECK = "MPGEARMAN"


def as_json(doc: dict) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    return f"{minutes}m{seconds:02d}s"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _header(doc: dict) -> list:
    head = f"{doc['kind']} {doc['version'] or '?'} on {doc['server']}"
    if doc["uptime_seconds"] is None:
        return [head]
    if doc["implementation"] == "python":
        head += " (pure-Python data plane)"
    conns = doc["connections"]
    head += (f", up {_duration(doc['uptime_seconds'])}, {conns['open']} connections "
             f"({conns['accepted']} accepted)")
    jobs = doc["jobs"]
    lines = [head, "jobs: " + ", ".join(f"{v} {k}" for k, v in jobs.items())]
    journal = doc.get("journal")
    if journal:
        lines.append(f"journal ({journal['durability']}): {_bytes(journal['bytes'])}, "
                     f"{journal['live_jobs']} background jobs, last sync "
                     f"{journal['seconds_since_sync']:.1f} s ago "
                     f"({journal['sync_latency_seconds'] * 1000:.1f} ms)"
                     + ("" if journal["writable"] else ", NOT WRITABLE"))
    if doc["rates"] is not None:
        lines.append(f"jobs/s over {doc['interval_seconds']:.1f} s: "
                     + ", ".join(f"{v:.1f} {k}" for k, v in doc["rates"].items()))
    return lines


def _seconds(value) -> str:
    """A latency for the table: "-" for none, else 3 significant figures."""
    if value is None:
        return "-"
    if value >= 3600:
        return _duration(value)
    return f"{value:.3g}s" if value < 100 else f"{value:.0f}s"


LATENCY_HEAD = ("BUSY", "IDLE", "OLDEST", "WAIT95", "RUN95")


def _latency(fn: dict) -> tuple:
    """The latency cells of a function of mpgearman (busy and idle workers,
    age of the oldest queued job, 95th percentile wait and run times)."""
    return (fn["busy_workers"], fn["idle_workers"], _seconds(fn["oldest_age_seconds"]),
            _seconds(fn.get("wait_p95_seconds")), _seconds(fn.get("run_p95_seconds")))


def _function_table(doc: dict) -> list:
    rows = [(name, fn) for name, fn in doc["functions"].items()]
    t = doc["totals"]
    total = f"TOTAL ({t['functions']})"
    width = max([len(name) for name, _ in rows] + [8, len(total)])
    prio = t.get("queued_by_priority") is not None
    # future epoch jobs, apart from the queued ones (mpgearman only)
    timed = "scheduled" in t
    latency = doc["kind"] == "mpgearman" and all("busy_workers" in fn for _, fn in rows)

    def row(name, queued, by_prio, scheduled, running, workers, extra=None):
        cells = [f"{name:<{width}}", f"{queued:>8}"]
        if prio:
            cells += [f"{v:>7}" for v in by_prio] if by_prio else [f"{'-':>7}"] * 3
        if timed:
            cells.append(f"{scheduled:>9}")
        cells += [f"{running:>8}", f"{workers:>8}"]
        if latency:
            cells += [f"{v:>7}" for v in extra or ("", "", "", "", "")]
        return " ".join(cells).rstrip()

    lines = [row("FUNCTION", "QUEUED", ("HIGH", "NORMAL", "LOW") if prio else None,
                 "SCHEDULED", "RUNNING", "WORKERS", LATENCY_HEAD)]
    for name, fn in rows:
        qp = fn["queued_by_priority"]
        lines.append(row(name, fn["queued"], qp and tuple(qp.values()), fn.get("scheduled", 0),
                         fn["running"], fn["workers"], latency and _latency(fn)))
    qp = t.get("queued_by_priority")
    # 0 in the totals: nothing queued, shown as for a function
    oldest = ("", "", _seconds(t.get("oldest_age_seconds") or None), "", "")
    lines.append(row(total, t["queued"], qp and tuple(qp.values()), t.get("scheduled", 0),
                     t["running"], t["workers"], oldest))
    return lines


def _process_table(doc: dict) -> list:
    lines = [f"{'PROCESS':<14} {'PID':>8} {'CPU%':>6} {'CPU s':>9} {'RSS':>11}"]
    for p in doc["processes"]:
        name = p["role"] if p["role"] != "acceptor" else f"acceptor-{p['index']}"
        cpu = "-" if p["cpu_percent"] is None else f"{p['cpu_percent']:.1f}"
        lines.append(f"{name:<14} {p.get('pid', 0):>8} {cpu:>6} "
                     f"{p.get('cpu_seconds', 0):>9.2f} {_bytes(p.get('rss_bytes', 0)):>11}")
    return lines


def _unreadable(doc: dict) -> list:
    """One warning line for listing lines that did not parse, a few quoted."""
    bad = doc.get("unreadable") or []
    if not bad:
        return []
    quoted = ", ".join(f"{b['command']}: {b['line']!r}" for b in bad[:3])
    more = f", and {len(bad) - 3} more" if len(bad) > 3 else ""
    return ["", f"warning: {len(bad)} line{'s' if len(bad) != 1 else ''} of the server's "
                f"answers could not be read ({quoted}{more})"]


def as_text(doc: dict, height: int | None = None) -> str:
    """The table; with `height`, at most that many lines: the process table
    goes first, then function rows (the header, the column names and the
    TOTAL row always stay, with a line saying how many rows are left out)."""
    head, table, tail = _header(doc) + [""], _function_table(doc), _unreadable(doc)
    procs = [""] + _process_table(doc) if doc["processes"] else []
    if height is not None and len(head) + len(table) + len(tail) + len(procs) > height:
        procs = []
        room = max(height - len(head) - len(tail) - 3, 0)   # names, TOTAL, "more" line
        rows = table[1:-1]
        if len(rows) > room:
            more = len(rows) - room
            table = [table[0]] + rows[:room] + [
                f"... {more} more function{'s' if more != 1 else ''} "
                f"(a taller terminal, or --json, shows them)", table[-1]]
    return "\n".join(head + table + tail + procs)


# -- Nagios / Icinga ----------------------------------------------------------------

def check(doc: dict, function: str | None, warn_queued, crit_queued,
          warn_workers, crit_workers, warn_oldest=None, crit_oldest=None) -> tuple:
    """(state, line): queued above a threshold, workers below one, or the
    oldest queued job older than one (seconds); the figures are the
    function's with `function`, else the totals (workers = connections that
    registered at least one function; oldest = over all functions)."""
    if function is not None:
        fn = doc["functions"].get(function)
        if fn is None:
            return UNKNOWN, unknown(f"function {function} is unknown to {doc['server']}")
        queued, workers, what = fn["queued"], fn["workers"], f"function {function}: "
        oldest = fn.get("oldest_age_seconds")
    else:
        queued, workers, what = doc["totals"]["queued"], doc["totals"]["workers"], ""
        oldest = doc["totals"].get("oldest_age_seconds")
    ages = warn_oldest is not None or crit_oldest is not None
    if ages and doc["kind"] != "mpgearman":
        return UNKNOWN, unknown(f"{doc['kind']} does not tell how long jobs have waited")
    oldest = oldest or 0.0
    state, reasons = OK, []
    for value, limit, level, text in (
            (queued, crit_queued, CRITICAL, f"queued > {crit_queued}"),
            (queued, warn_queued, WARNING, f"queued > {warn_queued}")):
        if limit is not None and value > limit:
            state = max(state, level)
            reasons.append(text)
            break
    level, reason = _too_old(oldest, warn_oldest, crit_oldest)
    if reason:
        state = max(state, level)
        reasons.append(reason)
    for value, limit, level, text in (
            (workers, crit_workers, CRITICAL, f"workers < {crit_workers}"),
            (workers, warn_workers, WARNING, f"workers < {warn_workers}")):
        if limit is not None and value < limit:
            state = max(state, level)
            reasons.append(text)
            break
    summary = f"{what}{queued} jobs queued, {workers} workers"
    if ages:
        summary += f", oldest waited {oldest:.1f} s"
    if reasons:
        summary += " (" + ", ".join(reasons) + ")"
    bad = len(doc.get("unreadable") or ())
    if bad:     # judged on what could be read; said, not alarmed on
        summary += f", {bad} unreadable line{'s' if bad != 1 else ''}"
    perf = (f"queued={queued};{_limit(warn_queued)};{_limit(crit_queued)};0 "
            f"workers={workers};{_limit(warn_workers, below=True)};"
            f"{_limit(crit_workers, below=True)};0")
    if ages:
        perf += f" oldest={oldest:.3f}s;{_limit(warn_oldest)};{_limit(crit_oldest)};0"
    return state, f"{CHECK} {STATE_NAMES[state]} - {summary} | {perf}"


def _too_old(oldest: float, warn, crit) -> tuple:
    """(state, reason or None) of the oldest queued job's age."""
    for limit, level in ((crit, CRITICAL), (warn, WARNING)):
        if limit is not None and oldest > limit:
            return level, f"oldest job waited > {limit:g} s"
    return OK, None


def _limit(value, below=False) -> str:
    """A Nagios threshold range: "N" alerts above N, "N:" below N."""
    if value is None:
        return ""
    return f"{value}:" if below else f"{value}"


def merged(docs: list) -> dict:
    """What the check judges for several servers: per function and in
    total, queued jobs and workers summed over them, and the oldest
    queued job's age over them (when every server is an mpgearman)."""
    if len(docs) == 1:
        return docs[0]
    ages = all(d["kind"] == "mpgearman" for d in docs)
    functions = {}
    for doc in docs:
        for name, fn in doc["functions"].items():
            into = functions.setdefault(name, {"queued": 0, "workers": 0})
            into["queued"] += fn["queued"]
            into["workers"] += fn["workers"]
            if ages:
                into["oldest_age_seconds"] = max(into.get("oldest_age_seconds") or 0.0,
                                                 fn.get("oldest_age_seconds") or 0.0)
    totals = {k: sum(d["totals"][k] for d in docs) for k in ("queued", "workers")}
    if ages:
        totals["oldest_age_seconds"] = max(d["totals"].get("oldest_age_seconds", 0.0)
                                           for d in docs)
    return {"server": ", ".join(d["server"] for d in docs), "functions": functions,
            "kind": "mpgearman" if ages else "mixed", "totals": totals,
            "unreadable": [u for d in docs for u in d.get("unreadable") or ()]}


def unknown(message: str) -> str:
    return f"{CHECK} {STATE_NAMES[UNKNOWN]} - {message}"
