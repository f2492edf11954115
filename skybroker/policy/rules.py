"""The paper's baseline policies, exactly as its simulator implements them (vectorised).

Every rule reads the tick-rounded terms of :func:`deadline_terms` (Rq, N1, N2) instead of the
prose's "R(t) < C(t) + 2d", because that is what the simulator (and so the published costs)
does. `finalize` is applied by the caller after these proposals.
"""

from __future__ import annotations

import numpy as np

from skybroker.policy.base import (
    EPS,
    NONE,
    OD,
    SPOT,
    TYPE_DTYPE,
    BasePolicy,
    RunState,
)
from skybroker.policy.registry import register_policy

_OD8 = TYPE_DTYPE(OD)


def _fill(n: int, value: int) -> np.ndarray:
    return np.full(n, value, dtype=TYPE_DTYPE)


def _compose(state: RunState, avail: np.ndarray, to_od: np.ndarray) -> np.ndarray:
    """SPOT if available else NONE, overridden to OD by ``to_od`` and by the safety net.

    The rules of Greedy and UP before the last one only ever turn a proposal into OD, so they
    fold into one mask; the N2 rule joins it, and the N1 rule (the last word) is applied on top:
    when one restart is all the slack left, keep a fully restarted spot instance, else go
    on-demand, except that with d = 0 a restart is free and spot is taken whenever there is some.
    """
    t = state.terms
    cur = state.cur
    # N2 >= Rq: two restarts no longer fit, so an idle or on-demand run goes (stays) on-demand.
    to_od = to_od | (t.two_restarts_late & (cur != SPOT))
    x = avail.astype(TYPE_DTYPE)  # SPOT == 1, NONE == 0
    x[to_od] = OD
    if t.any_must_go:
        keep = ((cur == SPOT) & (state.remaining_overhead < EPS)) | ((state.overhead == 0) & avail)
        # OD - keep is SPOT where spot is kept, OD elsewhere.
        x = np.where(t.must_go, np.subtract(_OD8, keep, dtype=TYPE_DTYPE), x)
    return x


class OnDemandOnly(BasePolicy):
    """On-demand for the whole job: the cost upper bound."""

    name = "on_demand"

    def decide(self, state: RunState, memory: dict) -> np.ndarray:
        return _fill(state.n, OD)


class SpotOnly(BasePolicy):
    """Spot when available, else wait (ignores the deadline; only the final guarantee applies)."""

    name = "spot_only"

    def decide(self, state: RunState, memory: dict) -> np.ndarray:
        return np.where(state.spot_any, SPOT, NONE).astype(TYPE_DTYPE)


class Greedy(BasePolicy):
    """Spot when available, else wait; on-demand for good once the safety net triggers."""

    name = "greedy"

    def decide(self, state: RunState, memory: dict) -> np.ndarray:
        avail = state.spot_any
        return _compose(state, avail, np.zeros(state.n, dtype=bool))


class UniformProgress(BasePolicy):
    """Can't Be Late's Uniform Progress: stay on or above the line W = e * C0 / R0."""

    name = "uniform_progress"

    def decide(self, state: RunState, memory: dict) -> np.ndarray:
        avail = state.spot_any
        e, w, c0, r0, d = (state.elapsed, state.work_done, state.work_total, state.deadline,
                           state.overhead)
        rate = c0 / r0
        # Behind the uniform-progress line (W - e*C0/R0 < 0, i.e. W < e*C0/R0): spot if
        # possible, else on-demand. (Comparisons of bool arrays: a > b is a & ~b.)
        to_od = np.greater(w < e * rate, avail)
        # Hysteresis: stay on on-demand until spot returns AND progress passes ep(e + 2d).
        on_od = state.cur == OD
        if np.count_nonzero(on_od):
            below = (e + 2.0 * d) * rate >= w  # (e + 2d) * C0/R0 - W >= 0
            # on_od & (~avail | below) == on_od & ~(avail & ~below); bool a > b is a & ~b.
            to_od |= np.greater(on_od, np.greater(avail, below))
        return _compose(state, avail, to_od)


class TimeSliced(BasePolicy):
    """The paper's Time-Sliced baseline: Greedy inside equal slices, each with its own deadline.

    Our reading: the time to the deadline is cut into ``slices`` equal slices; by the end of
    slice k the job should have done (k + 1) / slices of its work. Inside a slice the run takes
    spot when available and waits otherwise, and switches to on-demand when the slice's
    remaining share of work plus one restart no longer fits in what is left of the slice
    (rounded to ticks like the simulator's rules). The global safety net still applies on top.
    """

    name = "time_sliced"

    def __init__(self, slices: int = 8) -> None:
        if int(slices) < 1:
            raise ValueError("time_sliced: slices must be >= 1")
        self.slices = int(slices)

    def decide(self, state: RunState, memory: dict) -> np.ndarray:
        avail = state.spot_any
        g = state.gap
        k = self.slices
        length = state.deadline / k
        idx = np.minimum(np.floor(state.elapsed / length), k - 1)
        slice_end = (idx + 1) * length
        target = np.minimum(state.work_total, (idx + 1) * state.work_total / k)
        owed = np.maximum(target - state.work_done, 0.0)
        left = np.floor((slice_end - state.elapsed) / g) * g
        need = np.ceil((owed + state.overhead) / g) * g
        urgent = (owed > EPS) & (need >= left)
        keep = (state.cur == SPOT) & avail
        to_od = urgent & ~keep
        # Like UP's hysteresis: once on on-demand in a slice, finish that slice's share on it.
        to_od |= (state.cur == OD) & (owed > EPS) & ~avail
        return _compose(state, avail, to_od)


register_policy("on_demand", OnDemandOnly, aliases=("od", "on-demand", "ondemand"))
register_policy("spot_only", SpotOnly, aliases=("spot", "spot-only"))
register_policy("greedy", Greedy)
register_policy("uniform_progress", UniformProgress, aliases=("up", "uniform-progress"))
register_policy("time_sliced", TimeSliced, aliases=("time-sliced", "ts"))
