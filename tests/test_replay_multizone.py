"""Multi-zone and multi-node replay: zone choice, preemption per zone, gangs."""

from __future__ import annotations

import numpy as np
import pytest

from skybroker.policy import SPOT, BasePolicy, Decision, get_policy
from skybroker.replay import make_batch, replay, simulate
from skybroker.traces import Trace

G = 600.0


def _batch(avail, work_ticks=6, deadline_ticks=20, d=0.0):
    n = len(avail)
    return make_batch(avail, np.full(n, work_ticks * G), np.full(n, deadline_ticks * G),
                      np.full(n, d), np.full(n, G))


def test_two_identical_zones_behave_like_one():
    rng = np.random.default_rng(3)
    singles = [rng.random(40) < 0.6 for _ in range(50)]
    doubled = [np.stack([a, a], axis=1) for a in singles]
    for name in ("uniform_progress", "greedy", "spot_only"):
        one = simulate(_batch(singles, d=120.0), get_policy(name))
        two = simulate(_batch(doubled, d=120.0), get_policy(name))
        assert np.array_equal(one.cost, two.cost), name
        assert np.array_equal(one.switches, two.switches), name


def test_losing_the_current_zone_is_a_preemption_and_moving_is_a_restart():
    # Zone 0 for 3 ticks, then only zone 1.
    a = np.zeros((30, 2), dtype=bool)
    a[:3, 0] = True
    a[3:, 1] = True
    out = simulate(_batch([a], work_ticks=6, deadline_ticks=30, d=400.0), get_policy("spot_only"))
    assert out.preemptions[0] == 1
    assert out.switches[0] == 2  # start in zone 0, restart in zone 1
    assert out.od_ticks[0] == 0 and out.idle_ticks[0] == 0
    # Either zone up at every tick: a single trace of "any zone" would never be preempted.
    flat = simulate(_batch([a.any(axis=1)], work_ticks=6, deadline_ticks=30, d=400.0),
                    get_policy("spot_only"))
    assert flat.preemptions[0] == 0 and flat.finish_ticks[0] == 7 and out.finish_ticks[0] == 8


class _PreferZone1(BasePolicy):
    name = "prefer_zone_1"

    def decide(self, state, memory):
        return Decision(np.full(state.n, SPOT, np.int8), np.full(state.n, 1))


def test_a_policy_may_pick_the_zone():
    a = np.ones((30, 2), dtype=bool)
    a[10:, 1] = False
    out = simulate(_batch([a], work_ticks=12, deadline_ticks=30, d=0.0), _PreferZone1())
    # Zone 1 until it goes away at tick 10, then finalize falls back to zone 0.
    assert out.preemptions[0] == 1 and out.switches[0] == 2


def test_gang_of_nodes_needs_the_count_and_pays_per_node():
    counts = np.array([4, 4, 2, 2, 4, 4, 4, 4, 4, 4] * 4)
    tr = Trace(counts, G, "gang")
    r1 = replay(tr, "spot_only,on_demand", duration_h=1.0, deadline_h=6.0, restart_overhead_h=0.0,
                nodes=1)
    r4 = replay(tr, "spot_only,on_demand", duration_h=1.0, deadline_h=6.0, restart_overhead_h=0.0,
                nodes=4)
    s1 = [r for r in r1.records if r["policy"] == "spot_only"][0]
    s4 = [r for r in r4.records if r["policy"] == "spot_only"][0]
    assert s1["preemptions"] == 0 and s4["preemptions"] == 1
    od1 = [r for r in r1.records if r["policy"] == "on_demand"][0]
    od4 = [r for r in r4.records if r["policy"] == "on_demand"][0]
    assert od4["cost"] == pytest.approx(4 * od1["cost"])
