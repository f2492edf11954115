"""A scalar, per-run reference of the replay semantics, written straight from DESIGN.md.

It shares no code with `skybroker.policy` or `skybroker.replay`: it is the cross-check of the
vectorised engine (here, on random traces) and the baseline of `benchmarks/bench_replay.py`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

NONE, SPOT, OD = 0, 1, 2
EPS = 1e-3


def reference_run(avail, policy: str, work: float, deadline: float, d: float, g: float,
                  p_spot: float = 0.9731, p_od: float = 3.06) -> tuple[float, int]:
    """(cost $, finish tick) of one run; ``avail`` is a list of bools (missing = unavailable)."""
    n_av = len(avail)
    w = rem = cost = 0.0
    prev = NONE
    t = 0
    while True:
        e = t * g
        if prev != NONE:  # 1. credit the previous tick
            y = g - rem if g > rem else 0.0
            w += min(y, work - w)
            rem = rem - g if rem > g else 0.0
            if rem < EPS:
                rem = 0.0
        c = work - w
        if c <= EPS:  # 2. done
            return cost, t
        a = t < n_av and bool(avail[t])
        cur = NONE if (prev == SPOT and not a) else prev  # 3. preemption
        rq = math.floor((deadline - e) / g) * g
        n1 = math.ceil((c + d) / g) * g
        n2 = math.ceil((c + 2 * d) / g) * g
        # 4. the policy ...
        if policy == "on_demand":
            x = OD
        elif policy == "spot_only":
            x = SPOT if a else NONE
        else:
            x = SPOT if a else NONE
            if policy == "uniform_progress":
                if w - e * work / deadline < 0:
                    x = SPOT if a else OD
                if cur == OD and (not a or (e + 2 * d) * work / deadline - w >= 0):
                    x = OD
            if n2 >= rq and cur in (NONE, OD):
                x = OD
            if n1 >= rq:
                x = SPOT if (cur == SPOT and rem < EPS) else OD
                if d == 0 and a:
                    x = SPOT
        # ... then the final guarantee
        if n1 >= rq:
            x = SPOT if (prev == SPOT and rem < EPS) else OD
        if x == SPOT and not a:
            x = NONE
        if x != cur and x != NONE:  # 5. restart
            rem = d
        if x == SPOT:  # 6. bill the tick
            cost += p_spot * g / 3600
        elif x == OD:
            cost += p_od * g / 3600
        prev = x
        t += 1


@pytest.mark.parametrize("policy", ["uniform_progress", "greedy", "on_demand", "spot_only"])
def test_engine_matches_scalar_reference_on_random_traces(policy):
    from skybroker.policy import get_policy
    from skybroker.replay.engine import make_batch, simulate

    rng = np.random.default_rng(7)
    n = 300
    g = rng.choice([32.0, 300.0, 600.0], n)
    ticks = rng.integers(5, 80, n)
    avail = [rng.random(k) < rng.uniform(0.05, 0.95) for k in ticks]
    work = rng.uniform(0.2, 0.9, n) * ticks * g
    deadline = work * rng.uniform(0.8, 2.5, n)
    d = rng.choice([0.0, 0.1, 0.5, 1.0, 2.4], n) * g
    out = simulate(make_batch(avail, work, deadline, d, g), get_policy(policy))
    for i in range(n):
        cost, fin = reference_run(list(avail[i]), policy, work[i], deadline[i], d[i], g[i])
        assert out.finish_ticks[i] == fin, i
        assert out.cost[i] == pytest.approx(cost, abs=1e-9), i


def test_reference_loop_reproduces_a_few_oracle_rows():
    """The reference itself is checked against the paper's simulator (first 30 rows)."""
    import csv
    import json

    from conftest import BENCH_TSV

    tsv = BENCH_TSV
    rows = list(csv.DictReader(tsv.open(), delimiter="\t"))[:30]
    for r in rows:
        data = json.loads((tsv.parent / r["trace"]).read_text())["data"]
        s, n = int(r["start_tick"]), int(r["length_ticks"])
        av = [v >= 1 for v in data[s : s + n]]
        args = (48 * 3600.0, float(r["deadline_h"]) * 3600, float(r["restart_overhead_h"]) * 3600, 600.0)
        assert reference_run(av, "uniform_progress", *args)[0] == pytest.approx(
            float(r["cost_uniform_progress"]), abs=1e-6)
        assert reference_run(av, "greedy", *args)[0] == pytest.approx(float(r["cost_greedy"]), abs=1e-6)
