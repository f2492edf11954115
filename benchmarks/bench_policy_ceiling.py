#!/usr/bin/env python3
"""How far can a run-length model take Hazard DP on the ADRS set? Cheating models as a ceiling.

Hazard DP (`best`) plans on hazards fitted once on the K80 traces. This benchmark replays the
1,080 ADRS runs with models that know more than any online policy can:

* per trace: hazards fitted on the very trace each run replays (in-sample, 4 models);
* per window: hazards fitted on each run's own 554-tick window (in-sample, 116 distinct windows,
  2 pseudo-ticks of the shipped model per bucket so empty buckets stay defined).

If even the per-window model, which has seen the future of the window it plans for, stays
near the shipped one, the remaining gap to the clairvoyant optimum is not a better estimate
of run lengths away; it is the order in which runs and outages come, which no run-length model
(and no online policy) knows in advance.

Usage: python benchmarks/bench_policy_ceiling.py [--windows N] [--seed 0]
(--windows: replay only a random sample of N of the 116 windows, all runs of each; the
per-window models take ~10 s of CPU per window.)
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from skybroker.policy import get_policy  # noqa: E402
from skybroker.policy.hazard_dp import HazardDP  # noqa: E402
from skybroker.policy.hazard_fit import fit_hazards  # noqa: E402
from skybroker.replay.engine import make_batch, simulate  # noqa: E402
from skybroker.traces import load_trace  # noqa: E402

# The oracle copy of the ADRS set: runs plus the reference UP and optimum costs.
RUNS = REPO / "tests" / "fixtures" / "bench" / "adrs_single_region_eval.tsv"
H = 3600.0


def _batch(rows, idx, wins):
    return make_batch([wins[i] for i in idx],
                      np.array([float(rows[i]["duration_h"]) * H for i in idx]),
                      np.array([float(rows[i]["deadline_h"]) * H for i in idx]),
                      np.array([float(rows[i]["restart_overhead_h"]) * H for i in idx]),
                      np.full(len(idx), 600.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=0, help="sample this many windows (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with RUNS.open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    traces = {r["trace"]: load_trace(RUNS.parent / r["trace"]) for r in rows}
    wins = []
    for r in rows:
        s = int(r["start_tick"])
        wins.append(traces[r["trace"]].available(1)[s: s + int(r["length_ticks"])])
    by_window: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rows):
        by_window.setdefault((r["trace"], r["start_tick"]), []).append(i)
    keys = list(by_window)
    if args.windows:
        rng = np.random.default_rng(args.seed)
        keys = [keys[j] for j in sorted(rng.choice(len(keys), args.windows, replace=False))]
    sel = [i for k in keys for i in by_window[k]]
    up = np.array([float(rows[i]["cost_uniform_progress"]) for i in sel])
    opt = np.array([float(rows[i]["cost_optimum"]) for i in sel])
    pos = {i: j for j, i in enumerate(sel)}
    costs: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    costs["shipped model (best)"] = simulate(_batch(rows, sel, wins), get_policy("best")).cost
    t_ship = time.perf_counter() - t0

    per_trace = np.zeros(len(sel))
    for name, tr in traces.items():
        idx = [i for i in sel if rows[i]["trace"] == name]
        if idx:
            out = simulate(_batch(rows, idx, wins), HazardDP(hazards=fit_hazards([tr])))
            per_trace[[pos[i] for i in idx]] = out.cost
    costs["per-trace model (in-sample)"] = per_trace

    per_window = np.zeros(len(sel))
    t1 = time.perf_counter()
    for n, k in enumerate(keys):
        idx = by_window[k]
        h = fit_hazards([(wins[idx[0]], 600.0)], prior_weight=2.0)
        per_window[[pos[i] for i in idx]] = simulate(_batch(rows, idx, wins), HazardDP(hazards=h)).cost
        if n % 20 == 19:
            print(f"  ... {n + 1}/{len(keys)} windows, {time.perf_counter() - t1:.0f} s",
                  file=sys.stderr)
    costs["per-window model (in-sample)"] = per_window

    print(f"ADRS set: {len(keys)} windows, {len(sel)} runs (shipped model replayed in "
          f"{t_ship:.1f} s, per-window models in {time.perf_counter() - t1:.0f} s)")
    print(f"  {'model':<30}{'mean $':>9}{'vs UP':>9}{'gap closed':>12}")
    print(f"  {'Uniform Progress':<30}{up.mean():9.2f}")
    for label, c in costs.items():
        print(f"  {label:<30}{c.mean():9.2f}{100 * (1 - c.mean() / up.mean()):8.2f}%"
              f"{100 * (up.mean() - c.mean()) / (up.mean() - opt.mean()):11.1f}%")
    print(f"  {'clairvoyant optimum':<30}{opt.mean():9.2f}{100 * (1 - opt.mean() / up.mean()):8.2f}%")


if __name__ == "__main__":
    main()
