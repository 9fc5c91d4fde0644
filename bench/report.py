"""From the rounds to the table: every mpgearman figure set against the
better gearmand of its round, medians over the rounds, and the target."""
from __future__ import annotations

import operator
import statistics

from loads import BY_NAME, Figure, fmt

OPS = {">=": operator.ge, "<=": operator.le, "<": operator.lt, ">": operator.gt}
MP = "mpgearman"


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _value(runs: dict, rnd: int, load: str, impl: str, server: str, fig: Figure):
    """The figure of one run; for "self" figures, divided by the same
    server's figure `fig.of` in the same round."""
    res = runs.get((rnd, load, impl, server))
    if res is None or res.get(fig.key) is None:
        return None
    v = res[fig.key]
    if fig.target_on == "self":
        other = runs.get((rnd, fig.of[0], impl, server))
        base = other.get(fig.of[1]) if other else None
        return v / base if base else None
    return v


def _best(candidates: list[tuple[str, float]], better: str):
    if not candidates:
        return None, None
    pick = max if better == "high" else min
    return pick(candidates, key=lambda kv: kv[1])


def summarise(runs_list: list[dict], gearmands: list[str]) -> list[dict]:
    """One row per (load, worker impl, figure), in the loads' order."""
    runs = {(r["round"], r["load"], r["impl"], r["server"]): r["result"] for r in runs_list}
    rounds = sorted({r["round"] for r in runs_list})
    seen = []
    for r in runs_list:
        if (r["load"], r["impl"]) not in seen:
            seen.append((r["load"], r["impl"]))
    rows = []
    for name, impl in seen:
        load = BY_NAME[name]
        for i, fig in enumerate(load.figures):
            mp, gd, ratios, winners, cpu = [], [], [], [], {"mp": [], "gd": [], "lm": [], "lg": []}
            for rnd in rounds:
                v = _value(runs, rnd, name, impl, MP, fig)
                cands = [(g, _value(runs, rnd, name, impl, g, fig)) for g in gearmands]
                g_label, g = _best([c for c in cands if c[1] is not None], fig.better)
                mp.append(v)
                gd.append(g)
                winners.append(g_label)
                ratios.append(v / g if v is not None and g else None)
                if i == 0:
                    _cpu_columns(cpu, runs.get((rnd, name, impl, MP)),
                                 runs.get((rnd, name, impl, g_label)))
            row = {"load": name, "impl": impl, "figure": fig.label, "key": fig.key,
                   "unit": "x" if fig.target_on == "self" else fig.unit,
                   "mpgearman": _median(mp), "gearmand": _median(gd),
                   "ratio": _median(ratios), "rounds": sum(v is not None for v in mp),
                   "best_gearmand": {w: winners.count(w) for w in set(winners) if w},
                   "target": fig.target_text()}
            row["met"] = _met(fig, row)
            if i == 0:
                row.update({k: _median(v) for k, v in
                            (("server_cpu_pct_mp", cpu["mp"]), ("server_cpu_pct_gd", cpu["gd"]),
                             ("loadgen_cpu_pct_mp", cpu["lm"]),
                             ("loadgen_cpu_pct_gd", cpu["lg"]))})
            rows.append(row)
    return rows


def _cpu_columns(cpu: dict, mp_res: dict | None, gd_res: dict | None) -> None:
    for key, res in (("mp", mp_res), ("gd", gd_res)):
        if res and "server_cpu_pct" in res:
            cpu[key].append(res["server_cpu_pct"])
            cpu["l" + key[0]].append(res["loadgen_cpu_pct"])


def _met(fig: Figure, row: dict):
    if fig.target_on is None:
        return None
    value = row["ratio"] if fig.target_on == "ratio" else row["mpgearman"]
    if value is None:
        return None
    return bool(OPS[fig.op](value, fig.target))


def table(rows: list[dict]) -> str:
    head = ("| load | workers | figure | mpgearman | best gearmand | ratio | target | met? "
            "| server CPU% mp / gd | loadgen CPU% mp / gd |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        cpu = lg = ""
        if "server_cpu_pct_mp" in r:
            cpu = f"{_pct(r['server_cpu_pct_mp'])} / {_pct(r['server_cpu_pct_gd'])}"
            lg = f"{_pct(r['loadgen_cpu_pct_mp'])} / {_pct(r['loadgen_cpu_pct_gd'])}"
        ratio = "-" if r["ratio"] is None or r["unit"] == "x" else f"{r['ratio']:.2f}"
        lines.append(f"| {r['load']} | {r['impl']} | {r['figure']} "
                     f"| {fmt(r['mpgearman'], r['unit'])} | {fmt(r['gearmand'], r['unit'])} "
                     f"| {ratio} | {r['target']} | {met} | {cpu} | {lg} |")
    return "\n".join(lines)


def _pct(v) -> str:
    return "-" if v is None else f"{v:.0f}"
