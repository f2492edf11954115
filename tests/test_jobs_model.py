"""The controller's tick model takes replay's decisions, bit for bit, on real trace windows."""

from __future__ import annotations

import numpy as np
import pytest

from skybroker.jobs import model as M
from skybroker.policy import NONE, SPOT, get_policy, policy_names
from skybroker.replay import make_batch, simulate
from skybroker.traces import load_trace
from tests.conftest import REPO

TRACE = REPO / "traces/spot-traces/availability/1-node/aws-10-26-2022/us-west-2a_k80_1.json"


def run_model(avail: np.ndarray, params: M.Params, policy) -> tuple[list[int], M.Model, int]:
    """What the controller does at each tick, without clusters: the decision sequence."""
    m = M.Model.start(params)
    kinds = []
    t = 0
    while True:
        if t:
            M.credit(params, m, params.gap_s)
        if M.model_done(params, m):
            return kinds, m, t
        av = bool(avail[t]) if t < len(avail) else False
        x, _, _ = M.decide(params, m, policy, av, lost=(m.prev == SPOT and not av))
        kinds.append(x)
        t += 1


@pytest.mark.parametrize("policy", policy_names())  # every registered policy, `best` included
def test_model_equals_replay(policy):
    trace = load_trace(TRACE)
    rng = np.random.default_rng(7)
    g = trace.gap_s
    for _ in range(8):
        start = int(rng.integers(0, len(trace) - 400))
        dur = float(rng.uniform(2, 30)) * 3600
        dl = dur * float(rng.uniform(1.05, 2.5))
        d = float(rng.choice([0.0, 0.1, 0.2, 0.5])) * 3600
        avail = trace.available()[start:start + 400]
        out = simulate(make_batch([avail], np.array([dur]), np.array([dl]), np.array([d]),
                                  np.array([g]), 0.9, 3.0), get_policy(policy), record=True)
        params = M.Params(policy=policy, deadline_s=dl, duration_s=dur, overhead_s=d, gap_s=g)
        kinds, m, finish = run_model(avail, params, get_policy(policy))
        assert finish == int(out.finish_ticks[0])
        assert kinds == out.timeline["kind"].tolist()
        assert m.switches == int(out.switches[0]) and m.preemptions == int(out.preemptions[0])
        spot_t = sum(k == SPOT for k in kinds)
        od_t = sum(k not in (SPOT, NONE) for k in kinds)
        assert (spot_t, od_t) == (int(out.spot_ticks[0]), int(out.od_ticks[0]))


def test_recovery_only_jobs_follow_the_market():
    p = M.Params(policy=None, wants_spot=True, gap_s=60)
    m = M.Model.start(p)
    assert M.decide(p, m, None, True, False)[0] == SPOT
    x, cur, restart = M.decide(p, m, None, False, True)
    assert (x, cur, restart) == (NONE, NONE, False) and m.preemptions == 1
    p.wants_spot = False
    assert M.decide(p, m, None, False, False)[0] == 2


def run_model_zones(avail: np.ndarray, params: M.Params, policy) -> tuple[list, M.Model, int]:
    """The controller's multi-zone rehearsal: one bool per zone, the zone chosen by finalize."""
    m = M.Model.start(params)
    out = []
    t = 0
    while True:
        if t:
            M.credit(params, m, params.gap_s)
        if M.model_done(params, m):
            return out, m, t
        av = avail[t] if t < len(avail) else np.zeros(avail.shape[1], dtype=bool)
        lost = m.prev == SPOT and not (m.zone_idx >= 0 and av[m.zone_idx])
        x, _, _ = M.decide(params, m, policy, [bool(v) for v in av], lost=lost)
        out.append((x, m.zone_idx))
        t += 1


@pytest.mark.parametrize("policy", ["uniform_progress", "greedy", "spot_only", "best"])
def test_multi_zone_model_equals_replay(policy):
    from skybroker.traces import align

    zs = align([load_trace(TRACE), load_trace(str(TRACE).replace("2a_", "2b_"))])
    rng = np.random.default_rng(11)
    g = zs.gap_s
    for _ in range(6):
        start = int(rng.integers(0, len(zs) - 400))
        dur = float(rng.uniform(2, 20)) * 3600
        dl = dur * float(rng.uniform(1.05, 2.5))
        d = float(rng.choice([0.0, 0.2])) * 3600
        avail = zs.available()[start:start + 400]
        out = simulate(make_batch([avail], np.array([dur]), np.array([dl]), np.array([d]),
                                  np.array([g]), 0.9, 3.0), get_policy(policy), record=True)
        params = M.Params(policy=policy, deadline_s=dl, duration_s=dur, overhead_s=d, gap_s=g)
        got, m, finish = run_model_zones(avail, params, get_policy(policy))
        tl = out.timeline
        assert finish == int(out.finish_ticks[0])
        assert [k for k, _ in got] == tl["kind"].tolist()
        assert [z for k, z in got if k == SPOT] == [int(z) for k, z in zip(tl["kind"], tl["zone"])
                                                   if k == SPOT]
        assert m.switches == int(out.switches[0]) and m.preemptions == int(out.preemptions[0])
