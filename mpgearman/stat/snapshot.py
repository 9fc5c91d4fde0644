"""Raw samples (probe.py) -> the snapshot document `stat` shows.

Owns: the document's shape (what `stat --json` prints, see README), totals,
and rates from two samples: job counters per second and each process's CPU
share. Must not: talk to a server or print.
"""
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
    return totals


def _apart(functions: dict, scheduled: dict | None) -> dict:
    """Future epoch jobs out of the queued (and normal) counts into their
    own, from a server that lists them (mpgearman's `scheduled`); copies."""
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
        doc.update({"implementation": None, "uptime_seconds": None, "jobs": None,
                    "connections": None,
                    "processes": None, "rates": None, "interval_seconds": None})
    return doc
