"""Raw samples (probe.py) -> the snapshot document `stat` shows.

Owns: the document's shape (what `stat --json` prints, see README), totals,
rates from two samples (job counters per second and each process's CPU
share) and the 95th percentiles of the wait and run times. Must not: talk
to a server or print.
"""
from .probe import JOB_COUNTERS, PRIORITIES

LATENCY = ("wait", "run")


def _number(text):
    return float(text) if "." in text else int(text)


def _processes(stats: dict) -> list:
    """[{role, index, pid, cpu_seconds, rss_bytes}] from process.ROLE.INDEX.FIELD keys."""
    found = {}
    for key, value in stats.items():
        parts = key.split(".")
        if len(parts) == 4 and parts[0] == "process":
            entry = found.setdefault((parts[1], int(parts[2])),
                                     {"role": parts[1], "index": int(parts[2])})
            entry[parts[3]] = _number(value)
    order = {"supervisor": 0, "coordinator": 1, "metrics": 2, "acceptor": 3}
    return [found[k] for k in sorted(found, key=lambda k: (order.get(k[0], 9), k))]


def _totals(functions: dict, worker_connections: int, priorities: bool) -> dict:
    """Sums; queued_by_priority only from a server that answers
    `prioritystatus` (zeros with no function, never null)."""
    by_prio = {p: 0 for p in PRIORITIES}
    for fn in functions.values():
        if fn["queued_by_priority"] is not None:
            priorities = True
            for p in PRIORITIES:
                by_prio[p] += fn["queued_by_priority"][p]
    totals = {"functions": len(functions),
              "queued": sum(fn["queued"] for fn in functions.values()),
              "running": sum(fn["running"] for fn in functions.values()),
              "workers": worker_connections}
    if priorities:
        totals["queued_by_priority"] = by_prio
    if any("oldest_age_seconds" in fn for fn in functions.values()):
        # mpgearman: the age of the oldest queued job of any function
        totals["oldest_age_seconds"] = max(
            (fn["oldest_age_seconds"] or 0.0 for fn in functions.values()), default=0.0)
    return totals


def _apart(functions: dict, scheduled: dict | None) -> dict:
    """Future epoch jobs out of the queued (and normal) counts into their
    own, from a server that counts them (mpgearman's `stats`); copies."""
    if scheduled is None:
        return functions
    out = {}
    for name, fn in functions.items():
        fn = dict(fn, scheduled=min(scheduled.get(name, 0), fn["queued"]))
        fn["queued"] -= fn["scheduled"]
        if fn["queued_by_priority"] is not None:
            by_prio = dict(fn["queued_by_priority"])
            by_prio["normal"] = max(by_prio["normal"] - fn["scheduled"], 0)
            fn["queued_by_priority"] = by_prio
        out[name] = fn
    return out


def quantile(buckets: dict, q: float):
    """The q-quantile of a histogram ({upper bound: cumulative count}),
    interpolated within its bucket as Prometheus' histogram_quantile does;
    None without observations. In the last (+Inf) bucket: its lower bound."""
    items = list(buckets.items())
    total = items[-1][1] if items else 0
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0
    for bound, count in items:
        if count >= rank:
            if bound == "+Inf":
                return lower
            upper = float(bound)
            inside = count - below
            return round(lower + (upper - lower) * (rank - below) / inside, 6)
        lower, below = float(bound), count
    return lower


def _delta(cur: dict, prev: dict | None) -> dict:
    if prev is None:
        return cur["buckets"]
    return {k: max(v - prev["buckets"].get(k, 0), 0) for k, v in cur["buckets"].items()}


def _percentiles(functions: dict, prev: dict | None) -> None:
    """wait_p95_seconds and run_p95_seconds of each mpgearman function: over
    the interval between the samples when there are two, else since the
    server started; None when no job was assigned (ended) meanwhile."""
    for name, fn in functions.items():
        before = (prev or {}).get(name) or {}
        for kind in LATENCY:
            hist = fn.get(f"{kind}_seconds")
            if hist is not None:
                base = before.get(f"{kind}_seconds") if prev is not None else None
                if prev is not None and base is None:
                    base = {"buckets": {}}
                fn[f"{kind}_p95_seconds"] = quantile(_delta(hist, base), 0.95)


def _journal(stats: dict) -> dict | None:
    """The journal's figures (`stats` journal.* keys), numbers as numbers;
    None from a server that keeps none or does not say."""
    if stats.get("journal.durability") in (None, "none"):
        return None
    out = {"durability": stats["journal.durability"]}
    for key, value in stats.items():
        if key.startswith("journal.") and key != "journal.durability":
            out[key[len("journal."):]] = float(value) if "." in value else int(value)
    return out


def _mpgearman_part(cur: dict, prev: dict | None) -> dict:
    stats = cur["stats"]
    jobs = {k: int(stats.get(f"jobs_{k}", 0)) for k in JOB_COUNTERS}
    procs = _processes(stats)
    doc = {"implementation": stats.get("implementation"), "core": stats.get("core"),
           "uptime_seconds": float(stats.get("uptime", 0)), "jobs": jobs,
           "connections": {"open": int(stats.get("connections", 0)),
                           "accepted": int(stats.get("connections_accepted", 0))},
           "processes": procs, "rates": None, "interval_seconds": None,
           "journal": _journal(stats)}
    if prev is None or prev["stats"] is None:
        for p in procs:
            p["cpu_percent"] = None
        return doc
    dt = max(cur["at"] - prev["at"], 1e-6)
    before = {k: int(prev["stats"].get(f"jobs_{k}", 0)) for k in JOB_COUNTERS}
    # max(0, ...): a counter restarts from 0 when a dropped function comes back.
    doc["rates"] = {k: round(max(jobs[k] - before[k], 0) / dt, 3) for k in JOB_COUNTERS}
    doc["interval_seconds"] = round(dt, 3)
    earlier = {(p["role"], p["index"], p.get("pid")): p for p in _processes(prev["stats"])}
    for p in procs:
        old = earlier.get((p["role"], p["index"], p.get("pid")))
        p["cpu_percent"] = None if old is None else \
            round(max(p["cpu_seconds"] - old["cpu_seconds"], 0) * 100 / dt, 1)
    return doc


def document(where: str, cur: dict, prev: dict | None = None) -> dict:
    """The snapshot: `cur` is the latest sample, `prev` an earlier one that
    rates are measured against (None: no rates)."""
    mp = cur["stats"] is not None
    if mp:
        _percentiles(cur["functions"], prev["functions"] if prev is not None else None)
    functions = _apart(cur["functions"], cur.get("scheduled"))
    doc = {"server": where, "kind": "mpgearman" if mp else "gearmand",
           "version": cur["version"],
           "functions": dict(sorted(functions.items())),
           "totals": _totals(functions, cur["worker_connections"],
                             cur.get("priorities", False)),
           # lines of the server's listings that did not parse: {command, line}
           "unreadable": list(cur.get("unreadable", ()))}
    if cur.get("scheduled") is not None:
        doc["totals"]["scheduled"] = sum(fn["scheduled"] for fn in functions.values())
    if mp:
        doc.update(_mpgearman_part(cur, prev))
    else:
        doc.update({"implementation": None, "core": None, "uptime_seconds": None, "jobs": None,
                    "connections": None,
                    "processes": None, "rates": None, "interval_seconds": None})
    return doc
