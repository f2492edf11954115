"""The Python API of replay: run policies over trace windows and get one record per run.

``replay(...)`` evaluates one job (optionally several deadlines) on one trace or several zones;
``replay_runs(path, ...)`` evaluates a runs file; both return a :class:`ReplayResult` whose
``records`` are plain dicts (JSON-ready) and whose ``summary`` aggregates them per policy.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skybroker.errors import SkyError
from skybroker.policy import UnknownPolicyError, canonical_name, get_policy, policy_names
from skybroker.replay.engine import (
    DEFAULT_PRICE_OD,
    DEFAULT_PRICE_SPOT,
    Outcome,
    make_batch,
    simulate,
)
from skybroker.replay.runs import RunSpec, TraceCache, load_runs
from skybroker.traces import Trace, ZoneSet

OPTIMUM = "optimum"
H = 3600.0

Progress = Callable[[int], None]  # called with the number of (policy, run) pairs just finished


@dataclass
class ReplayResult:
    """Records (one dict per (policy, run), runs in input order for each policy) + summary."""

    records: list[dict]
    summary: dict[str, dict]
    policies: list[str]
    warnings: list[str] = field(default_factory=list)
    timelines: dict[str, dict] = field(default_factory=dict)  # policy -> per-tick arrays of run 0

    def to_json(self) -> dict:
        return {"runs": self.records, "summary": self.summary}

    def costs(self, policy: str) -> np.ndarray:
        return np.array([r["cost"] for r in self.records if r["policy"] == policy])


def optimum_available() -> bool:
    """Whether the omniscient optimum (``skybroker.policy.optimum``) is installed."""
    return importlib.util.find_spec("skybroker.policy.optimum") is not None


def resolve_policies(names: Sequence[str] | str) -> list[str]:
    """Canonical policy names (aliases resolved, duplicates dropped); ``optimum`` allowed."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if name == OPTIMUM:
            if not optimum_available():
                raise SkyError("the 'optimum' pseudo-policy needs skybroker.policy.optimum")
            key = OPTIMUM
        else:
            try:
                key = canonical_name(name)
            except UnknownPolicyError as e:
                extra = f" ('{OPTIMUM}' adds the omniscient optimum.)" if optimum_available() else ""
                raise SkyError(str(e) + extra) from None
        if key not in out:
            out.append(key)
    if not out:
        raise SkyError(f"no policy given; known: {', '.join(policy_names())}")
    return out


def _avail(win: Trace | ZoneSet, nodes: int) -> np.ndarray:
    return win.available(nodes)


def evaluate(
    specs: Sequence[RunSpec],
    policies: Sequence[str] | str,
    price_spot: float = DEFAULT_PRICE_SPOT,
    price_od: float = DEFAULT_PRICE_OD,
    cache: TraceCache | None = None,
    progress: Progress | None = None,
    timeline_run: int | None = None,
    policy_params: dict[str, dict] | None = None,
) -> ReplayResult:
    """Replay every run under every policy (vectorised over runs, one batch per zone count).

    ``policy_params`` passes constructor arguments per policy (aliases work), e.g.
    ``{"best": {"hazards": fit_hazards(my_traces)}}``.
    """
    names = resolve_policies(policies)
    params = {canonical_name(k): dict(v) for k, v in (policy_params or {}).items()}
    cache = cache or TraceCache()
    wins = [cache.window(s) for s in specs]
    gaps = np.array([w.gap_s for w in wins])
    groups: dict[int, list[int]] = {}
    for i, w in enumerate(wins):
        groups.setdefault(w.zones if isinstance(w, ZoneSet) else 0, []).append(i)
    records: dict[str, list[dict | None]] = {p: [None] * len(specs) for p in names}
    ref_od = np.zeros(len(specs))
    timelines: dict[str, dict] = {}
    run_names = [p for p in names if p != OPTIMUM]
    needs_od = "on_demand" not in run_names
    for _, idx in sorted(groups.items()):
        sub = [specs[i] for i in idx]
        batch = make_batch(
            [_avail(wins[i], specs[i].nodes) for i in idx],
            np.array([s.duration_h * H for s in sub]),
            np.array([s.deadline_h * H for s in sub]),
            np.array([s.restart_overhead_h * H for s in sub]),
            gaps[idx], price_spot, price_od, np.array([s.nodes for s in sub]),
        )
        todo = run_names + (["on_demand"] if needs_od else [])
        for name in todo:
            record = timeline_run == idx[0]  # the engine records the batch's first run
            report = progress if name in records else None
            out = simulate(batch, get_policy(name, **params.get(name, {})), record=record,
                           progress=report)
            if name == "on_demand":
                ref_od[idx] = out.cost
            if out.timeline is not None:
                timelines[name] = dict(out.timeline, gap_s=np.float64(gaps[idx[0]]))
            if name in records:
                for j, i in enumerate(idx):
                    records[name][i] = _record(name, i, specs[i], out, j, float(gaps[i]))
        if OPTIMUM in names:
            for i in idx:
                records[OPTIMUM][i] = _optimum_record(i, specs[i], wins[i], float(gaps[i]),
                                                      price_spot, price_od)
                if progress:
                    progress(1)
    flat: list[dict] = []
    for p in names:
        for i, r in enumerate(records[p]):
            assert r is not None
            r["od_cost"] = float(ref_od[i])
            r["norm_cost"] = float(r["cost"] / ref_od[i]) if ref_od[i] > 0 else float("nan")
            flat.append(r)
    return ReplayResult(flat, summarize(flat, names), names, cache.warnings(), timelines)


def _record(policy: str, i: int, spec: RunSpec, out: Outcome, j: int, gap: float) -> dict:
    finish_s = float(out.finish_ticks[j]) * gap
    return {
        "policy": policy,
        "run": i,
        "trace": spec.label or "+".join(spec.traces),
        "start_tick": spec.start_tick,
        "length_ticks": spec.length_ticks,
        "duration_h": spec.duration_h,
        "deadline_h": spec.deadline_h,
        "restart_overhead_h": spec.restart_overhead_h,
        "nodes": spec.nodes,
        "cost": float(out.cost[j]),
        "finish_h": finish_s / H,
        "met": bool(finish_s <= spec.deadline_h * H + 1e-6),
        "spot_h": float(out.spot_ticks[j]) * gap / H,
        "od_h": float(out.od_ticks[j]) * gap / H,
        "idle_h": float(out.idle_ticks[j]) * gap / H,
        "switches": int(out.switches[j]),
        "preemptions": int(out.preemptions[j]),
    }


def _optimum_record(i: int, spec: RunSpec, win: Trace | ZoneSet, gap: float, ps: float,
                    po: float) -> dict:
    """The omniscient optimum as a pseudo-policy (multi-zone: any zone, a lower bound)."""
    opt = importlib.import_module("skybroker.policy.optimum")
    avail = win.available(spec.nodes)
    if avail.ndim == 2:
        avail = avail.any(axis=1)
    res = opt.optimum_cost(avail, spec.duration_h * H, spec.deadline_h * H,
                           spec.restart_overhead_h * H, gap, ps * spec.nodes, po * spec.nodes,
                           schedule=True)
    sched = res.schedule if res.schedule is not None else np.zeros(0, np.int8)
    if len(sched) > len(avail):  # ran past the window, where spot counts as unavailable
        avail = np.concatenate([avail, np.zeros(len(sched) - len(avail), bool)])
    spot_h = float((sched == 1).sum()) * gap / H
    od_h = float((sched == 2).sum()) * gap / H
    finish_h = float(res.finish_s) / H if res.feasible else float("nan")
    return {
        "policy": OPTIMUM, "run": i, "trace": spec.label or "+".join(spec.traces),
        "start_tick": spec.start_tick, "length_ticks": spec.length_ticks,
        "duration_h": spec.duration_h, "deadline_h": spec.deadline_h,
        "restart_overhead_h": spec.restart_overhead_h, "nodes": spec.nodes,
        "cost": float(res.cost), "finish_h": finish_h, "met": bool(res.feasible),
        "spot_h": spot_h, "od_h": od_h,
        "idle_h": max(len(sched) * gap / H - spot_h - od_h, 0.0),
        "switches": _starts(sched),
        "preemptions": int(np.count_nonzero((sched[:-1] == 1) & ~avail[1 : len(sched)])),
    }


def _starts(sched: np.ndarray) -> int:
    """(Re)starts of a schedule: ticks that run something other than the previous tick."""
    before = np.concatenate([[0], sched[:-1]])
    return int(np.count_nonzero((sched != before) & (sched != 0)))


def summarize(records: list[dict], policies: Sequence[str]) -> dict[str, dict]:
    """Per policy: runs, mean/p50/p90 cost, normalised cost (vs on-demand only), misses."""
    out: dict[str, dict] = {}
    for p in policies:
        rs = [r for r in records if r["policy"] == p]
        if not rs:
            continue
        c = np.array([r["cost"] for r in rs])
        norm = np.array([r["norm_cost"] for r in rs])
        out[p] = {
            "runs": len(rs),
            "mean_cost": float(c.mean()),
            "p50_cost": float(np.percentile(c, 50)),
            "p90_cost": float(np.percentile(c, 90)),
            "norm_cost": float(np.nanmean(norm)) if np.isfinite(norm).any() else float("nan"),
            "misses": int(sum(not r["met"] for r in rs)),
            "mean_switches": float(np.mean([r["switches"] for r in rs])),
            "spot_share": float(np.sum([r["spot_h"] for r in rs])
                                / max(np.sum([r["spot_h"] + r["od_h"] for r in rs]), 1e-12)),
        }
    _add_gap_closed(out)
    return out


def _add_gap_closed(summary: dict[str, dict]) -> None:
    """With UP and the optimum present: the share of UP's gap to the optimum each policy closes.

    (mean UP - mean policy) / (mean UP - mean optimum): 0 = UP, 1 = the optimum, negative =
    worse than UP. This is how issue 3 scores a better policy.
    """
    up, opt = summary.get("uniform_progress"), summary.get(OPTIMUM)
    if not up or not opt:
        return
    gap = up["mean_cost"] - opt["mean_cost"]
    for s in summary.values():
        s["gap_closed"] = (up["mean_cost"] - s["mean_cost"]) / gap if gap > 1e-12 else float("nan")


BY_FIELDS = {"deadline": "deadline_h", "overhead": "restart_overhead_h", "duration": "duration_h",
             "trace": "trace", "nodes": "nodes"}


def summarize_by(records: list[dict], policies: Sequence[str], by: Sequence[str]) -> list[dict]:
    """``summarize`` per group of runs sharing the ``by`` fields (e.g. deadline and overhead)."""
    keys = [BY_FIELDS.get(b, b) for b in by]
    for k in keys:
        if records and k not in records[0]:
            raise SkyError(f"cannot group by {k!r}; fields: {', '.join(sorted(BY_FIELDS))}")
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for g in sorted(groups, key=lambda t: tuple(str(x) if isinstance(x, str) else x for x in t)):
        out.append({"group": dict(zip(keys, g)), "summary": summarize(groups[g], policies)})
    return out


def replay(
    traces: str | Path | Trace | Sequence[str | Path | Trace],
    policies: Sequence[str] | str,
    duration_h: float,
    deadline_h: float | Sequence[float],
    restart_overhead_h: float,
    start_tick: int = 0,
    length_ticks: int | None = None,
    nodes: int = 1,
    price_spot: float = DEFAULT_PRICE_SPOT,
    price_od: float = DEFAULT_PRICE_OD,
    gap_s: float | None = None,
    inverted: bool = False,
    timeline: bool = False,
    policy_params: dict[str, dict] | None = None,
) -> ReplayResult:
    """Replay one job on one trace (or several zones) under each policy.

    ``deadline_h`` may be a list: one run per deadline (a cost-vs-deadline sweep). Traces may
    be paths or loaded :class:`Trace` objects. With ``timeline=True`` the result's
    ``timelines[policy]`` holds the per-tick decisions of the first run (for plots).
    """
    items = list(traces) if isinstance(traces, (list, tuple)) else [traces]
    cache = TraceCache(gap_s=gap_s, inverted=inverted)
    paths: list[str] = []
    for k, t in enumerate(items):
        if isinstance(t, Trace):
            key = f"<{t.name}#{k}>"
            cache._cache[key] = t
            paths.append(key)
        else:
            paths.append(str(Path(t)))
    deadlines = [deadline_h] if np.isscalar(deadline_h) else list(deadline_h)  # type: ignore[arg-type]
    label = "+".join(Path(p).name if not p.startswith("<") else p for p in paths)
    specs = [RunSpec(tuple(paths), float(duration_h), float(dl), float(restart_overhead_h),
                     int(start_tick), length_ticks, int(nodes), label) for dl in deadlines]
    return evaluate(specs, policies, price_spot, price_od, cache,
                    timeline_run=0 if timeline else None, policy_params=policy_params)


def replay_runs(
    runs_tsv: str | Path,
    policies: Sequence[str] | str,
    nodes: int | None = None,
    price_spot: float = DEFAULT_PRICE_SPOT,
    price_od: float = DEFAULT_PRICE_OD,
    progress: Progress | None = None,
    policy_params: dict[str, dict] | None = None,
) -> ReplayResult:
    """Replay every run of a runs file (trace paths relative to it) under each policy."""
    return evaluate(load_runs(runs_tsv, nodes=nodes), policies, price_spot, price_od,
                    progress=progress, policy_params=policy_params)
