#!/usr/bin/env python3
"""Does fitting Hazard DP's model on a zone's history pay on its future? A time-split check.

For each held-out trace family (never used to build the shipped model), fit the hazards on the
first half of every trace (at each gang size), then replay random jobs on windows drawn from
the second half only, with `best` on the shipped model and on the fitted one. The fitted model
never sees the ticks it is judged on, as when a user fits on last month and runs this month.

Usage: python benchmarks/bench_hazard_fit.py [--runs 200] [--seed 0]
"""

from __future__ import annotations

import argparse
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

TRACES = REPO / "traces" / "spot-traces"
FAMILIES = {  # folder -> gang sizes
    "preemption/1-node/aws-04-22-2023": (1,),
    "availability/16-node/aws-08-27-2023": (1, 2, 4, 8),
    "preemption/4-node/aws-08-03-2023": (1, 2, 4),
}
H = 3600.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200, help="random runs per family")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"Time split: hazards fitted on each trace's first half, {args.runs} runs per family "
          "on its second half (job 8-48 h, deadline 1.05-1.9 x, d 0.02-0.4 h)")
    print(f"  {'family':<38}{'UP':>9}{'shipped':>17}{'fitted':>17}{'misses':>8}")
    for fam, gangs in FAMILIES.items():
        traces = [load_trace(p) for p in sorted((TRACES / fam).glob("*.json"))]
        t0 = time.perf_counter()
        cost = {"up": [], "shipped": [], "fitted": []}
        misses = 0
        for nodes in gangs:
            halves = [(t.available(nodes)[: len(t) // 2], t.gap_s) for t in traces]
            h = fit_hazards(halves, nodes=nodes)
            wins, c, r, d, g = [], [], [], [], []
            while len(wins) < args.runs // len(gangs):
                t = traces[rng.integers(len(traces))]
                c_h = rng.uniform(8.0, 48.0)
                r_h = c_h * rng.uniform(1.05, 1.9)
                ticks = int(np.ceil(r_h * H / t.gap_s)) + 2
                half = len(t) // 2
                if ticks >= len(t) - half:
                    continue
                s = int(rng.integers(half, len(t) - ticks))
                wins.append(t.available(nodes)[s: s + ticks])
                c.append(c_h * H)
                r.append(r_h * H)
                d.append(float(rng.choice([0.02, 0.05, 0.1, 0.2, 0.4])) * H)
                g.append(t.gap_s)
            batch = make_batch(wins, np.array(c), np.array(r), np.array(d), np.array(g),
                               nodes=np.full(len(wins), nodes))
            for key, pol in (("up", get_policy("up")), ("shipped", get_policy("best")),
                             ("fitted", HazardDP(hazards=h))):
                out = simulate(batch, pol)
                cost[key].append(out.cost)
                if key != "up":
                    misses += int(np.sum(out.finish_ticks * batch.gap > batch.deadline + 1e-6))
        up = np.concatenate(cost["up"]).mean()
        cells = "".join(f"{np.concatenate(cost[k]).mean():9.2f} ({100 * (1 - np.concatenate(cost[k]).mean() / up):+5.2f}%)"
                        for k in ("shipped", "fitted"))
        print(f"  {fam:<38}{up:9.2f}{cells}{misses:8d}   [{time.perf_counter() - t0:.0f} s]")


if __name__ == "__main__":
    main()
