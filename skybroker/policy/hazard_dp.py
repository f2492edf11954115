"""Hazard DP: plan each decision by backward induction over a run-length model of spot.

Why: Slack Reserve's loss is an end-game it cannot see coming. At tight deadlines with large
overheads it spends its slack on idle ticks and restarts into short spot runs, the safety net
then fires while it is on on-demand, and it rides on-demand to the end past long spot runs (on
the ADRS set at 52 h, 43-73 on-demand ticks per run while spot is up). The clairvoyant optimum
spends about as much slack, but on restarts into *long* runs, and is on spot when the slack
runs out. An online policy can only do that with a model of how long spot runs and outages
last, and a plan that knows the simulator's guarantee.

So: model availability as a semi-Markov chain on (available?, age bucket), with the hazard of
a run / an outage ending in its next 10 minutes given its age (buckets 1, 2-3, 4-7, 8-15,
16-31, 32+ steps: spot runs are heavy-tailed, their hazard falls with age), and solve the
stochastic control problem exactly on that model by backward induction over (steps left, work
left on a grid of g/5, type and restart-overhead phase as in the simulator, availability
state). The cost is ticks billed at 1 (spot) and k = p_od / p_spot (on-demand); a run that
cannot finish is infinite. Both safety rules are part of the model: the simulator's guarantee
(N1 >= Rq: keep a restarted spot instance, else on-demand) and Greedy's net (N2 >= Rq and not
on spot: on-demand), so the plan knows that slack spent now is on-demand forced later.

The table is solved once per (step, overhead, price ratio) and cached for the process; each
decision is a lookup. The hazards are estimated on the two k80 traces of the ADRS set (the
tuning set; `hazard_fit.fit_hazards` reproduces them) and evaluated on the held-out v100 traces
and the other trace families; `HazardDP(hazards=...)` plans on a model fitted elsewhere. Ticks
other than 600 s plan on steps of about 10 minutes (a whole number of ticks) with the hazards
converted to that step. Memory is the age of the current availability state (ticks).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from skybroker.policy.base import (
    NONE,
    OD,
    SPOT,
    TYPE_DTYPE,
    BasePolicy,
    RunState,
    advance_state_age,
    state_age_memory,
)
from skybroker.policy.registry import register_policy

#: The paper's prices: on-demand $3.06/h over spot $0.9731/h.
PAPER_PRICE_RATIO = 3.06 / 0.9731
#: The model's step (seconds): the hazards below are per step of this length.
STEP_S = 600.0
#: Age buckets (in steps): 1, 2-3, 4-7, 8-15, 16-31, 32+.
BUCKETS = 6
#: P(the state ends after this step | its age bucket): row 0 outages, row 1 spot runs. Pooled
#: over the k80 traces of the ADRS set (us-west-2a/2b, availability 0.89 / 0.12), the tuning set.
HAZARD_600 = np.array([
    [0.609, 0.361, 0.174, 0.058, 0.015, 0.002],
    [0.217, 0.152, 0.069, 0.038, 0.028, 0.020],
])
#: Work grid cells per step.
CELLS = 5
#: At most this many steps to a deadline: longer jobs plan on proportionally longer steps, so a
#: table stays under ~200 MB (and a solve under a minute) whatever the job.
MAX_STEPS = 640
_INF = 1e9


def bucket_of(age_steps: np.ndarray) -> np.ndarray:
    """Age bucket (0..BUCKETS-1) of states that have lasted ``age_steps`` model steps."""
    a = np.maximum(age_steps, 1.0)
    return np.minimum(np.floor(np.log2(a)), BUCKETS - 1).astype(np.int64)


def _transition(hazard: np.ndarray) -> np.ndarray:
    """Step transition matrix over (available, bucket) states, index a * BUCKETS + b.

    A state that survives a step moves to the next bucket with probability 1 / (bucket
    width), the geometric approximation of its age within the bucket.
    """
    n = 2 * BUCKETS
    t = np.zeros((n, n))
    for a in (0, 1):
        for b in range(BUCKETS):
            i = a * BUCKETS + b
            h = hazard[a, b]
            t[i, (1 - a) * BUCKETS] += h
            adv = 1.0 / 2 ** b if b < BUCKETS - 1 else 0.0
            t[i, i] += (1.0 - h) * (1.0 - adv)
            if adv:
                t[i, i + 1] += (1.0 - h) * adv
    return t


def _phases(delta: int) -> list[int]:
    """Remaining overhead (cells) at successive steps of a run: delta, delta - q, ..., 0."""
    rems = [delta]
    while rems[-1] > 0:
        rems.append(max(rems[-1] - CELLS, 0))
    return rems


def _solve(step: float, d: float, k: float, r_max: int, c_max: int,
           hazard: np.ndarray = HAZARD_600) -> tuple[np.ndarray, tuple]:
    """Decision table [steps left, mode, availability state, work cells] -> NONE/SPOT/OD.

    Modes: 0 idle, 1..P spot in overhead phase p, P+1..2P on-demand in phase p.
    """
    u = step / CELLS
    delta = int(round(d / u))
    rems = _phases(delta)
    p = len(rems)
    gain = [max(CELLS - r, 0) for r in rems]
    nxt = [min(j + 1, p - 1) for j in range(p)]
    hz = 1.0 - (1.0 - hazard) ** (step / STEP_S)
    t = _transition(hz)
    n_st, cells = 2 * BUCKETS, c_max + 1
    cs = np.arange(cells)
    after = [np.maximum(cs - gj, 0) for gj in gain]
    up = np.zeros(n_st, dtype=bool)
    up[BUCKETS:] = True
    modes = 1 + 2 * p
    v = np.full((modes, n_st, cells), _INF)
    v[:, :, 0] = 0.0
    table = np.zeros((r_max + 1, modes, n_st, cells), dtype=TYPE_DTYPE)
    big = 10.0 * _INF
    for r in range(1, r_max + 1):
        e_none = t @ v[0]
        e_spot = [t @ np.where(up[:, None], v[1 + j], v[0]) for j in range(p)]
        e_od = [t @ v[1 + p + j] for j in range(p)]
        q_spot0 = 1.0 + e_spot[nxt[0]][:, after[0]]
        q_od0 = k + e_od[nxt[0]][:, after[0]]
        # The simulator's guarantee (N1 >= Rq) and Greedy's net (N2 >= Rq, not on spot).
        n1 = np.ceil((cs * u + d) / step - 1e-9) >= r
        n2 = np.ceil((cs * u + 2.0 * d) / step - 1e-9) >= r
        new = np.empty_like(v)
        for m in range(modes):
            if m == 0:
                q_s, q_o = q_spot0, q_od0
            elif m <= p:
                q_s, q_o = 1.0 + e_spot[nxt[m - 1]][:, after[m - 1]], q_od0
            else:
                q_s, q_o = q_spot0, k + e_od[nxt[m - 1 - p]][:, after[m - 1 - p]]
            q = np.stack([e_none, np.where(up[:, None], q_s, big), q_o])
            if 1 <= m <= p and rems[m - 1] == 0:
                q[0][:, n1] = big  # a restarted spot instance is kept (or lost to a preemption)
                q[2][:, n1] = big
            else:
                forced = n1 | n2 if m == 0 or m > p else n1
                q[0][:, forced] = big
                q[1][:, forced] = big
            best = np.argmin(q, axis=0)
            new[m] = np.minimum(np.take_along_axis(q, best[None], 0)[0], _INF)
            table[r, m] = best
        new[:, :, 0] = 0.0
        table[r, :, :, 0] = NONE
        v = new
    return table, tuple(rems)


#: Solved tables by (step, overhead, price ratio, hazards), most recently used last. A table's entry for
#: (steps left, work left) does not depend on the table's size (induction runs upward in both),
#: so the largest table solved so far answers every smaller job too.
_TABLES: OrderedDict[tuple[float, float, float, bytes], tuple[np.ndarray, tuple]] = OrderedDict()
_KEEP = 4


def _size(x: int, grain: int) -> int:
    """A table dimension: rounded up to a whole grain, so a few solves serve every job size."""
    return max(grain, -(-int(x) // grain) * grain)


def _table(step: float, d: float, k: float, r: int, c: int,
           hazard: np.ndarray = HAZARD_600) -> tuple[np.ndarray, tuple]:
    """The cached table for (step, d, k, hazards) if it is large enough, else a new, larger one."""
    key = (step, d, k, hazard.tobytes())
    got = _TABLES.get(key)
    if got is None or got[0].shape[0] <= r or got[0].shape[3] <= c:
        r_max = _size(max(r, got[0].shape[0] - 1 if got else 0), 64)
        c_max = _size(max(c, got[0].shape[3] - 1 if got else 0) + CELLS, 256)
        got = _TABLES[key] = _solve(step, d, k, r_max, c_max, hazard)
    _TABLES.move_to_end(key)
    return got


def _trim(in_use: int) -> None:
    """Drop the least recently used tables beyond _KEEP, never one the current call used (a
    batch with more (tick, overhead) pairs than _KEEP would otherwise re-solve every tick)."""
    while len(_TABLES) > max(_KEEP, in_use):
        _TABLES.popitem(last=False)


class HazardDP(BasePolicy):
    """Backward induction over a semi-Markov spot model, with the safety rules in the model."""

    name = "hazard_dp"

    def __init__(self, price_ratio: float = PAPER_PRICE_RATIO,
                 hazards: np.ndarray | str | None = None) -> None:
        """``hazards``: the run-length model, per-step hazards [outage, spot run] x age bucket
        (``skybroker.policy.hazard_fit.fit_hazards`` on your traces) or the path of a hazards
        JSON; default: the shipped model (``HAZARD_600``)."""
        if price_ratio <= 1.0:
            raise ValueError("hazard_dp: price_ratio (on-demand / spot) must be > 1")
        self.k = float(price_ratio)
        if hazards is None:
            self.hazard = HAZARD_600
        else:
            from skybroker.policy import hazard_fit

            self.hazard = (hazard_fit.load_hazards(hazards) if isinstance(hazards, str)
                           else hazard_fit.check_hazards(hazards))

    def init_memory(self, n: int) -> dict[str, np.ndarray]:
        return state_age_memory(n)

    def decide(self, state: RunState, memory: dict[str, np.ndarray]) -> np.ndarray:
        av = state.spot_any
        age = advance_state_age(state, memory)
        n = state.n
        gap = np.broadcast_to(np.asarray(state.gap, dtype=float), (n,))
        d_all = np.asarray(state.overhead, dtype=float)
        x = np.full(n, NONE, dtype=TYPE_DTYPE)
        # Whole ticks of about STEP_S per step, more for jobs beyond MAX_STEPS steps.
        per = np.maximum(np.maximum(np.round(STEP_S / gap), 1.0),
                         np.ceil(np.asarray(state.deadline, dtype=float) / (MAX_STEPS * gap)))
        groups = {(float(a), float(b), float(c)) for a, b, c in zip(gap, d_all, per)}
        for g, d, k in groups:
            m = (gap == g) & (d_all == d) & (per == k)
            step = g * k
            u = step / CELLS
            r = np.floor((state.deadline[m] - state.elapsed[m]) / step).astype(np.int64)
            c = np.ceil((state.work_total[m] - state.work_done[m]) / u - 1e-6).astype(np.int64)
            # More work than time is infeasible whatever the plan (the safety rules decide).
            c = np.minimum(c, CELLS * np.maximum(r, 0) + CELLS)
            table, rems = _table(step, d, self.k, int(r.max()), int(c.max()), self.hazard)
            r_max, c_max = table.shape[0] - 1, table.shape[3] - 1
            p = len(rems)
            st = av[m].astype(np.int64) * BUCKETS + bucket_of(age[m] * g / step)
            rem_c = state.remaining_overhead[m] / u
            ph = np.argmin(np.abs(rem_c[:, None] - np.asarray(rems, dtype=float)[None, :]), axis=1)
            cur = state.cur[m]
            mode = np.where(cur == NONE, 0, np.where(cur == SPOT, 1 + ph, 1 + p + ph))
            x[m] = table[np.clip(r, 0, r_max), mode, st, np.clip(c, 0, c_max)]
        _trim(len(groups))
        # Greedy's net, in the real tick terms (the table plans on its own grid).
        t = state.terms
        x[t.two_restarts_late & (state.cur != SPOT)] = OD
        return x


register_policy(
    "hazard_dp",
    HazardDP,
    aliases=("best", "hazard-dp", "dp"),
    description="Hazard DP (ours): backward induction over a semi-Markov model of spot run "
    "and outage lengths, with the safety rules in the model",
)
