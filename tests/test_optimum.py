"""The exact optimum against three independent answers: brute force over every schedule,
an ILP (pulp + HiGHS) over run segments, and the bench's reference column. Then the bound
itself: the optimum is never above any policy the replay engine runs.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skybroker.policy import NONE, OD, SPOT, get_policy, policy_names
from skybroker.policy.optimum import optimum_cost

PS, PO = 0.9731, 3.06
BENCH = Path(__file__).resolve().parent / "fixtures" / "bench" / "adrs_single_region_eval.tsv"


def replay_proposals(props, avail, c0, r0, d, g, guarantee):
    """A scalar replay of fixed proposals (DESIGN.md semantics): (cost, done tick or None)."""
    w = rem = cost = 0.0
    prev, t = NONE, 0
    while True:
        if prev != NONE:
            y = max(g - rem, 0.0)
            rem -= g - y
            rem = 0.0 if rem < 1e-3 else rem
            w += min(y, c0 - w)
        c = c0 - w
        if c <= 1e-3:
            return cost, t
        if t >= len(props):
            return cost, None
        cur = NONE if prev == SPOT and not avail[t] else prev
        x = props[t]
        if guarantee and math.ceil((c + d) / g) * g >= math.floor((r0 - t * g) / g) * g:
            x = SPOT if prev == SPOT and rem < 1e-3 else OD
        if x == SPOT and not avail[t]:
            x = NONE
        if x != cur and x != NONE:
            rem = d
        cost += (PS if x == SPOT else PO if x == OD else 0.0) * g / 3600
        prev, t = x, t + 1


def brute_force(avail, c0, r0, d, g, guarantee):
    """Cheapest of all 3^T proposal sequences that is done by the deadline."""
    ticks = math.floor(r0 / g + 1e-9)
    best = math.inf
    for props in itertools.product((NONE, SPOT, OD), repeat=ticks):
        cost, done = replay_proposals(props, avail, c0, r0, d, g, guarantee)
        if done is not None and done * g <= r0 + 1e-6:
            best = min(best, cost)
    return best


def _small_cases(n, seed):
    rng = random.Random(seed)
    for _ in range(n):
        g = rng.choice([600.0, 300.0, 32.0])
        ticks = rng.randint(2, 7)
        d = rng.choice([0.0, 0.12, 0.5, 1.0, 1.2, 2.4]) * g
        c0 = float(round(rng.uniform(0.2, ticks) * g))
        r0 = ticks * g + rng.choice([0.0, 0.4 * g])
        avail = [rng.random() < 0.55 for _ in range(ticks + 1)]
        yield avail, c0, r0, d, g


@pytest.mark.parametrize("guarantee", [False, True])
def test_matches_brute_force_on_small_instances(guarantee):
    for avail, c0, r0, d, g in _small_cases(120, seed=7 + guarantee):
        expect = brute_force(avail, c0, r0, d, g, guarantee)
        res = optimum_cost(np.array(avail), c0, r0, d, g, PS, PO, guarantee=guarantee)
        if math.isinf(expect):
            assert not res.feasible
            continue
        assert res.cost == pytest.approx(expect, abs=1e-9), (avail, c0, r0, d, g)
        # The schedule is a witness: replayed as proposals it costs that and finishes in time.
        cost, done = replay_proposals(list(res.schedule), avail, c0, r0, d, g, guarantee)
        assert cost == pytest.approx(res.cost, abs=1e-9)
        assert done is not None and done * g <= r0 + 1e-6
        assert res.finish_s == done * g


def _binary(prob, name):
    import pulp

    if hasattr(prob, "add_variable"):  # pulp >= 3.3 prefers model-attached variables
        return prob.add_variable(name, 0, 1, cat="Binary")
    return pulp.LpVariable(name, cat="Binary")


def ilp_optimum(avail, c0, r0, d, g):
    """The deadline-only optimum as an ILP over run segments (type, start, length).

    A segment of m ticks started by a restart yields max(m*g - d, 0); segments never overlap;
    spot segments only cover available ticks. Merging two adjacent same-type segments is never
    worse, so the ILP needs no rule for them.
    """
    import pulp

    ticks = math.floor(r0 / g + 1e-9)
    prob = pulp.LpProblem("optimum", pulp.LpMinimize)
    segs, cover = [], {t: [] for t in range(ticks)}
    for kind, price in ((SPOT, PS), (OD, PO)):
        for a in range(ticks):
            for m in range(1, ticks - a + 1):
                if kind == SPOT and not all(avail[a:a + m]):
                    break
                if m * g - d <= 0:
                    continue
                var = _binary(prob, f"x{kind}_{a}_{m}")
                segs.append((var, m * g - d, m * price * g / 3600))
                for t in range(a, a + m):
                    cover[t].append(var)
    if not segs:
        return math.inf
    prob += pulp.lpSum(v * c for v, _, c in segs)
    for vs in cover.values():
        if len(vs) > 1:
            prob += pulp.lpSum(vs) <= 1
    prob += pulp.lpSum(v * y for v, y, _ in segs) >= c0 - 1e-3
    status = prob.solve(pulp.HiGHS(msg=False))
    if pulp.LpStatus[status] != "Optimal":
        return math.inf
    return float(pulp.value(prob.objective))


def test_matches_ilp_on_medium_instances():
    rng = random.Random(11)
    for _ in range(6):
        g = rng.choice([600.0, 300.0])
        ticks = rng.randint(12, 26)
        d = rng.choice([0.12, 1.2, 2.4]) * g
        c0 = float(round(rng.uniform(0.3, 0.85) * ticks * g))
        r0 = ticks * g
        # Bursty availability, like real traces.
        avail, on = [], rng.random() < 0.5
        while len(avail) < ticks + 1:
            avail += [on] * rng.randint(1, 6)
            on = not on
        avail = avail[: ticks + 1]
        res = optimum_cost(np.array(avail), c0, r0, d, g, PS, PO)
        assert res.cost == pytest.approx(ilp_optimum(avail, c0, r0, d, g), abs=1e-6)


def test_degenerate_inputs():
    a = np.ones(10, bool)
    assert optimum_cost(a, 0.0, 600.0, 60.0, 600.0, PS, PO).cost == 0.0
    assert not optimum_cost(a, 6000.0, 3000.0, 60.0, 600.0, PS, PO).feasible
    # All spot, no overhead: exactly the spot ticks needed.
    res = optimum_cost(a, 1800.0, 6000.0, 0.0, 600.0, PS, PO)
    assert res.cost == pytest.approx(3 * PS / 6) and list(res.schedule) == [SPOT] * 3
    # No spot at all: on-demand, overhead included.
    res = optimum_cost(np.zeros(10, bool), 1800.0, 6000.0, 60.0, 600.0, PS, PO)
    assert res.cost == pytest.approx(4 * PO / 6) and list(res.schedule) == [OD] * 4
    with pytest.raises(ValueError, match="too fine"):  # a 12 ms grid over 48 h of work
        optimum_cost(a, 48 * 3600.0, 60 * 3600.0, 0.0123456, 600.0, PS, PO)


def _bench_rows():
    with BENCH.open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _window(row, cache={}):  # noqa: B006 - a per-process cache of 4 small traces
    path = BENCH.parent / row["trace"]
    if path not in cache:
        cache[path] = np.asarray(json.loads(path.read_text())["data"]) >= 1
    s = int(row["start_tick"])
    return cache[path][s: s + int(row["length_ticks"])]


def _bench_args(row):
    return (float(row["duration_h"]) * 3600, float(row["deadline_h"]) * 3600,
            float(row["restart_overhead_h"]) * 3600, 600.0, PS, PO)


def test_reference_column_on_a_bench_sample():
    """Every 61st run (18 runs, all 9 deadline x overhead groups); benchmarks/bench_optimum.py
    does all 1,080 (they all match)."""
    rows = _bench_rows()[::61]
    for row in rows:
        res = optimum_cost(_window(row), *_bench_args(row), schedule=False)
        assert res.cost == pytest.approx(float(row["cost_optimum"]), abs=1e-6), row


def test_guaranteed_optimum_bounds_every_policy_on_the_bench_sample():
    """optimum <= optimum under the guarantee <= every policy (the engine's costs), and the
    engine replays the guarantee-abiding schedule at exactly its cost."""
    from skybroker.replay.engine import make_batch, simulate

    rows = _bench_rows()[7::121]  # 9 runs, one per deadline x overhead group
    wins = [_window(r) for r in rows]
    args = np.array([_bench_args(r)[:3] for r in rows])
    batch = make_batch(wins, args[:, 0], args[:, 1], args[:, 2], np.full(len(rows), 600.0))
    opt = np.array([optimum_cost(w, *_bench_args(r), schedule=False).cost
                    for w, r in zip(wins, rows)])
    res_g = [optimum_cost(w, *_bench_args(r), guarantee=True) for w, r in zip(wins, rows)]
    opt_g = np.array([r.cost for r in res_g])
    assert np.all(opt <= opt_g + 1e-9)
    for name in policy_names():
        out = simulate(batch, get_policy(name))
        met = out.finish_ticks * batch.gap <= batch.deadline + 1e-6
        assert np.all(opt_g[met] <= out.cost[met] + 1e-9), name
    for w, r, res in zip(wins, rows, res_g):
        cost, done = replay_proposals(list(res.schedule), w, *_bench_args(r)[:4], True)
        assert cost == pytest.approx(res.cost, abs=1e-9) and done is not None


@st.composite
def bursty_runs(draw):
    g = float(draw(st.sampled_from([32.0, 300.0, 600.0])))
    ticks = draw(st.integers(3, 60))
    bits: list[bool] = []
    on = draw(st.booleans())
    while len(bits) < ticks:
        bits += [on] * draw(st.integers(1, 10))
        on = not on
    c0 = float(round(draw(st.floats(0.3, 0.9)) * ticks * g))
    d = draw(st.sampled_from([0.0, 0.12, 0.5, 1.0, 1.2, 2.4])) * g
    return np.array(bits[:ticks]), c0, float(ticks * g), d, g


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bursty_runs())
def test_optimum_bounds_policies_on_random_traces(run):
    from skybroker.replay.engine import make_batch, simulate

    avail, c0, r0, d, g = run
    opt = optimum_cost(avail, c0, r0, d, g, PS, PO)
    opt_g = optimum_cost(avail, c0, r0, d, g, PS, PO, guarantee=True)
    assert opt.cost <= opt_g.cost + 1e-9
    batch = make_batch([avail], np.array([c0]), np.array([r0]), np.array([d]), np.array([g]))
    for name in policy_names():
        out = simulate(batch, get_policy(name))
        if out.finish_ticks[0] * g <= r0 + 1e-6:
            assert opt_g.cost <= out.cost[0] + 1e-9, name
        if name == "on_demand" and opt.feasible:
            assert opt.cost <= out.cost[0] + 1e-9
