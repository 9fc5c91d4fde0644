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
    if doc["rates"] is not None:
        lines.append(f"jobs/s over {doc['interval_seconds']:.1f} s: "
                     + ", ".join(f"{v:.1f} {k}" for k, v in doc["rates"].items()))
    return lines


def _function_table(doc: dict) -> list:
    rows = [(name, fn) for name, fn in doc["functions"].items()]
    t = doc["totals"]
    total = f"TOTAL ({t['functions']})"
    width = max([len(name) for name, _ in rows] + [8, len(total)])
    prio = doc["totals"].get("queued_by_priority") is not None
    # future epoch jobs, apart from the queued ones (mpgearman only)
    timed = "scheduled" in t

    def row(name, queued, by_prio, scheduled, running, workers):
        cells = [f"{name:<{width}}", f"{queued:>8}"]
        if prio:
            cells += [f"{v:>7}" for v in by_prio] if by_prio else [f"{'-':>7}"] * 3
        if timed:
            cells.append(f"{scheduled:>9}")
        return " ".join(cells + [f"{running:>8}", f"{workers:>8}"])

    lines = [row("FUNCTION", "QUEUED", ("HIGH", "NORMAL", "LOW") if prio else None,
                 "SCHEDULED", "RUNNING", "WORKERS")]
    for name, fn in rows:
        qp = fn["queued_by_priority"]
        lines.append(row(name, fn["queued"], qp and tuple(qp.values()),
                         fn.get("scheduled", 0), fn["running"], fn["workers"]))
    qp = t.get("queued_by_priority")
    lines.append(row(total, t["queued"], qp and tuple(qp.values()), t.get("scheduled", 0),
                     t["running"], t["workers"]))
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
          warn_workers, crit_workers) -> tuple:
    """(state, line): queued above a threshold or workers below one; the
    figures are the function's with `function`, else the totals (workers =
    connections that registered at least one function)."""
    if function is not None:
        fn = doc["functions"].get(function)
        if fn is None:
            return UNKNOWN, unknown(f"function {function} is unknown to {doc['server']}")
        queued, workers, what = fn["queued"], fn["workers"], f"function {function}: "
    else:
        queued, workers, what = doc["totals"]["queued"], doc["totals"]["workers"], ""
    state, reasons = OK, []
    for value, limit, level, text in (
            (queued, crit_queued, CRITICAL, f"queued > {crit_queued}"),
            (queued, warn_queued, WARNING, f"queued > {warn_queued}")):
        if limit is not None and value > limit:
            state = max(state, level)
            reasons.append(text)
            break
    for value, limit, level, text in (
            (workers, crit_workers, CRITICAL, f"workers < {crit_workers}"),
            (workers, warn_workers, WARNING, f"workers < {warn_workers}")):
        if limit is not None and value < limit:
            state = max(state, level)
            reasons.append(text)
            break
    summary = f"{what}{queued} jobs queued, {workers} workers"
    if reasons:
        summary += " (" + ", ".join(reasons) + ")"
    bad = len(doc.get("unreadable") or ())
    if bad:     # judged on what could be read; said, not alarmed on
        summary += f", {bad} unreadable line{'s' if bad != 1 else ''}"
    perf = (f"queued={queued};{_limit(warn_queued)};{_limit(crit_queued)};0 "
            f"workers={workers};{_limit(warn_workers, below=True)};"
            f"{_limit(crit_workers, below=True)};0")
    return state, f"{CHECK} {STATE_NAMES[state]} - {summary} | {perf}"


def _limit(value, below=False) -> str:
    """A Nagios threshold range: "N" alerts above N, "N:" below N."""
    if value is None:
        return ""
    return f"{value}:" if below else f"{value}"


def merged(docs: list) -> dict:
    """What the check judges for several servers: per function and in
    total, queued jobs and workers summed over them."""
    if len(docs) == 1:
        return docs[0]
    functions = {}
    for doc in docs:
        for name, fn in doc["functions"].items():
            into = functions.setdefault(name, {"queued": 0, "workers": 0})
            into["queued"] += fn["queued"]
            into["workers"] += fn["workers"]
    return {"server": ", ".join(d["server"] for d in docs), "functions": functions,
            "totals": {k: sum(d["totals"][k] for d in docs) for k in ("queued", "workers")},
            "unreadable": [u for d in docs for u in d.get("unreadable") or ()]}


def unknown(message: str) -> str:
    return f"{CHECK} {STATE_NAMES[UNKNOWN]} - {message}"
