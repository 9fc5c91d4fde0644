"""Raw samples (probe.py) -> the snapshot document `stat` shows.

Owns: the document's shape (what `stat --json` prints, see README), totals,
rates from two samples (job counters per second and each process's CPU
share) and the 95th percentiles of the wait and run times. Must not: talk
to a server or print.
"""
LATENCY = ("wait", "run")
from .probe import JOB_COUNTERS, PRIORITIES


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


def _totals(functions: dict, worker_connections: int) -> dict:
    by_prio = {p: 0 for p in PRIORITIES}
    known = False
    for fn in functions.values():
        if fn["queued_by_priority"] is not None:
            known = True
            for p in PRIORITIES:
                by_prio[p] += fn["queued_by_priority"][p]
    ages = [fn["oldest_age_seconds"] for fn in functions.values()
            if fn.get("oldest_age_seconds") is not None]
    return {"functions": len(functions),
            "queued": sum(fn["queued"] for fn in functions.values()),
            "queued_by_priority": by_prio if known else None,
            "running": sum(fn["running"] for fn in functions.values()),
            "workers": worker_connections,
            "oldest_age_seconds": max(ages) if ages else None}


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


def _mpgearman_part(cur: dict, prev: dict | None) -> dict:
    stats = cur["stats"]
    jobs = {k: int(stats.get(f"jobs_{k}", 0)) for k in JOB_COUNTERS}
    procs = _processes(stats)
    doc = {"implementation": stats.get("implementation"),
           "uptime_seconds": float(stats.get("uptime", 0)), "jobs": jobs,
           "connections": {"open": int(stats.get("connections", 0)),
                           "accepted": int(stats.get("connections_accepted", 0))},
           "processes": procs, "rates": None, "interval_seconds": None}
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
    doc = {"server": where, "kind": "mpgearman" if mp else "gearmand",
           "version": cur["version"],
           "functions": dict(sorted(cur["functions"].items())),
           "totals": _totals(cur["functions"], cur["worker_connections"]),
           # lines of the server's listings that did not parse: {command, line}
           "unreadable": list(cur.get("unreadable", ()))}
    if mp:
        doc.update(_mpgearman_part(cur, prev))
    else:
        doc.update({"implementation": None, "uptime_seconds": None, "jobs": None,
                    "connections": None,
                    "processes": None, "rates": None, "interval_seconds": None})
    return doc
