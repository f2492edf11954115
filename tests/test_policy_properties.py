"""Properties on random traces (hypothesis).

Feasible deadline, precisely: on-demand started at time 0 finishes by the deadline under the
tick semantics, i.e. ceil((C0 + d) / g) <= floor(R0 / g). That is exactly what the safety net
can guarantee (it switches to on-demand while one restart still fits). Every deadline policy
(all registered policies except spot_only, which ignores the deadline) must then finish in time.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skybroker.policy import get_policy, policy_names
from skybroker.replay.engine import DEFAULT_PRICE_OD, make_batch, simulate

# Hazard DP solves a table per (tick, overhead): random draws of both would spend minutes
# solving; its own property tests (test_hazard_dp_policy.py) draw fewer combinations.
DEADLINE_POLICIES = [p for p in policy_names() if p not in ("spot_only", "on_demand", "hazard_dp")]


@st.composite
def runs(draw, n_max=24):
    """A handful of runs: bursty random traces, tick length, job, deadline and overhead."""
    n = draw(st.integers(1, n_max))
    g = float(draw(st.sampled_from([60.0, 300.0, 600.0])))
    avail, work, deadline, d = [], [], [], []
    for _ in range(n):
        ticks = draw(st.integers(2, 70))
        # Alternate runs of availability with random lengths: real traces are bursty.
        bits: list[bool] = []
        on = draw(st.booleans())
        while len(bits) < ticks:
            bits += [on] * draw(st.integers(1, 12))
            on = not on
        avail.append(np.array(bits[:ticks]))
        c = draw(st.floats(0.3, 40.0)) * g
        work.append(c)
        deadline.append(c * draw(st.floats(0.7, 3.0)) + draw(st.sampled_from([0.0, g, 2.5 * g])))
        d.append(draw(st.sampled_from([0.0, 0.12, 0.5, 1.0, 1.2, 2.4])) * g)
    return make_batch(avail, np.array(work), np.array(deadline), np.array(d), np.full(n, g))


def _feasible(b) -> np.ndarray:
    return np.array([math.ceil((c + d) / g) <= math.floor(r / g)
                     for c, d, g, r in zip(b.work, b.overhead, b.gap, b.deadline)])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_deadline_policies_meet_every_feasible_deadline(batch):
    feasible = _feasible(batch)
    od = simulate(batch, get_policy("on_demand"))
    assert np.all(od.finish_ticks[feasible] * batch.gap[feasible] <= batch.deadline[feasible] + 1e-6)
    for name in DEADLINE_POLICIES:
        out = simulate(batch, get_policy(name))
        met = out.finish_ticks * batch.gap <= batch.deadline + 1e-6
        assert np.all(met[feasible]), (name, np.flatnonzero(feasible & ~met))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_on_demand_only_bounds_the_cost(batch):
    """Never above on-demand only, except for overhead paid on extra restarts.

    With d = 0 the bound is exact: every tick run yields a full tick of work, and spot is
    cheaper. With d > 0 a policy can pay more than on-demand only on a flapping trace (each
    restart loses up to ceil(d / g) ticks; UP does so on 31 of the 1,080 ADRS runs), but never
    more than those lost ticks at the on-demand price.
    """
    od = simulate(batch, get_policy("on_demand")).cost
    lost_tick = np.ceil(batch.overhead / batch.gap) * batch.gap / 3600.0 * DEFAULT_PRICE_OD
    for name in DEADLINE_POLICIES + ["spot_only"]:
        out = simulate(batch, get_policy(name))
        bound = od + np.maximum(out.switches - 1, 0) * lost_tick
        assert np.all(out.cost <= bound + 1e-9), name
        free = batch.overhead == 0
        assert np.all(out.cost[free] <= od[free] + 1e-9), name
