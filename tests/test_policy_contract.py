"""The policy contract the controller relies on: n = 1 calls, finalize, JSON memory."""

from __future__ import annotations

import json

import numpy as np

from skybroker.policy import (
    NONE,
    OD,
    SPOT,
    Decision,
    RunState,
    deadline_terms,
    finalize,
    get_policy,
    memory_from_json,
    policy_names,
)


def _state(n=1, elapsed=0.0, work_done=0.0, work=3600.0 * 10, deadline=3600.0 * 12, d=720.0,
           rem=0.0, prev=NONE, cur=None, avail=True, gap=600.0, zone=None):
    arr = lambda v, dt=float: np.full(n, v, dtype=dt)  # noqa: E731
    return RunState(arr(elapsed), arr(work_done), arr(work), arr(deadline), arr(d), arr(rem),
                    arr(prev, np.int8), arr(prev if cur is None else cur, np.int8),
                    np.asarray(avail, dtype=bool) if np.ndim(avail) else arr(avail, bool), gap, zone)


def test_every_policy_decides_for_one_run_and_memory_round_trips():
    for name in policy_names():
        pol = get_policy(name)
        mem = pol.init_memory(1)
        mem = memory_from_json(json.loads(json.dumps({k: v.tolist() for k, v in mem.items()})))
        out = pol.decide(_state(), mem)
        kind = out.kind if isinstance(out, Decision) else out
        assert np.shape(kind) == (1,) and int(kind[0]) in (NONE, SPOT, OD), name
        final = finalize(_state(), out)
        assert final.kind.dtype == np.int8


def test_finalize_forces_on_demand_when_one_restart_is_all_the_slack():
    # 10 h of work + 0.2 h overhead, 10.2 h left: N1 >= Rq.
    s = _state(elapsed=3600 * 1.8, work_done=0.0, prev=NONE, avail=True)
    t = deadline_terms(s)
    assert t.must_go[0]
    assert finalize(s, np.array([SPOT], np.int8)).kind[0] == OD
    assert finalize(s, np.array([NONE], np.int8)).kind[0] == OD
    # A running, fully restarted spot instance is kept ...
    s2 = _state(elapsed=3600 * 1.8, prev=SPOT, rem=0.0, avail=True)
    assert finalize(s2, np.array([OD], np.int8)).kind[0] == SPOT
    # ... one still paying its restart is not.
    s3 = _state(elapsed=3600 * 1.8, prev=SPOT, rem=100.0, avail=True)
    assert finalize(s3, np.array([SPOT], np.int8)).kind[0] == OD


def test_finalize_masks_unavailable_spot():
    s = _state(avail=False)
    assert finalize(s, np.array([SPOT], np.int8)).kind[0] == NONE
    assert finalize(s, np.array([OD], np.int8)).kind[0] == OD


def test_multi_zone_keeps_the_current_zone_else_the_first_available():
    av = np.array([[True, True], [False, True], [False, False]])
    s = _state(n=3, prev=SPOT, avail=av, zone=np.array([1, 0, 0]))
    d = finalize(s, np.full(3, SPOT, np.int8))
    assert d.kind.tolist() == [SPOT, SPOT, NONE]
    assert d.zone.tolist() == [1, 1, -1]
    # A proposed zone wins when it is available.
    d2 = finalize(s, Decision(np.full(3, SPOT, np.int8), np.array([0, 0, 1])))
    assert d2.zone.tolist() == [0, 1, -1]


def test_uniform_progress_rules():
    up = get_policy("up")
    # Behind the line with no spot: on-demand.
    s = _state(elapsed=3600 * 2, work_done=0.0, avail=False)
    assert up.decide(s, {})[0] == OD
    # Ahead of the line with no spot: wait.
    s = _state(elapsed=3600 * 1, work_done=3600 * 2, avail=False)
    assert up.decide(s, {})[0] == NONE
    # Hysteresis: on on-demand, spot back, but progress below ep(e + 2d): stay.
    s = _state(elapsed=3600 * 2, work_done=3600 * 2, prev=OD, avail=True)
    assert up.decide(s, {})[0] == OD
    # ... and well above it: take spot.
    s = _state(elapsed=3600 * 2, work_done=3600 * 4, prev=OD, avail=True)
    assert up.decide(s, {})[0] == SPOT
