"""The exact omniscient optimum of one replay run: the cheapest schedule that knows the trace.

Why a dynamic program and not the paper's ILP: under the replay semantics (docs/replay.md, from
DESIGN.md) all that matters between two ticks is the type that ran, how many of its restart
ticks it has already paid (the overhead phase), and the work done. Every tick yields either 0,
the full tick g, or g minus the part of the restart overhead d that spills into it, so the work
done lives on a finite grid (multiples of gcd(g, g - d mod g), in whole milliseconds). A forward
DP over ticks, vectorised over that grid with numpy, is exact and takes milliseconds per run.

Two definitions are offered (``guarantee``):

* ``False`` (default): the schedule only has to finish by the deadline. This is the true
  clairvoyant optimum and a lower bound on every policy, with or without the safety net.
* ``True``: the omniscient chooser's proposals also pass through the simulator's final
  guarantee (step 4: when one restart no longer fits, it must keep a running spot instance or go
  on-demand). This is the best any policy *run through the simulator* can do; it is never
  below the first, and equal on almost every run (docs/policies.md lists where they differ).

The DP state after a decision is "tick t runs row s with work w before it"; rows are
NONE, SPOT phase 0..K and OD phase 0..K, where phase k means k overhead ticks are already paid
(K = no overhead left).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skybroker.policy.base import EPS, NONE, OD, SPOT, TYPE_DTYPE

_INF = np.inf
#: Refuse grids that would need more than this many progress cells (per row).
MAX_GRID = 4_000_000
#: Store back-pointers for at most this many cells; beyond, recompute segments (checkpoints).
_MAX_CHOICE_CELLS = 60_000_000


@dataclass(frozen=True)
class OptimumResult:
    """The optimum of one run.

    ``cost`` is in $ (``inf`` when even on-demand from the start misses the deadline);
    ``schedule`` holds the type run in each tick up to and including the finishing tick (None
    when infeasible or when not asked for); ``finish_s`` is the decision point at which the
    run is done (a whole number of ticks, as the replay engine reports it) and ``work_end_s``
    the instant inside that last tick when the work completes.
    """

    cost: float
    schedule: np.ndarray | None
    finish_s: float
    work_end_s: float

    @property
    def feasible(self) -> bool:
        return bool(np.isfinite(self.cost))


@dataclass(frozen=True)
class _Model:
    """Everything tick-independent: rows, their yields (grid units), costs and sources."""

    rows_type: np.ndarray  # type of each row (NONE/SPOT/OD)
    rows_rem: np.ndarray  # remaining overhead (s) at the start of the row's tick
    yields: np.ndarray  # grid units of work the row's tick yields
    costs: np.ndarray  # $ of the row's tick
    k: int  # index of the last phase (no overhead left)
    p: int  # grid cells of unfinished work: w in [0, p); w >= p is done
    unit_s: float  # seconds per grid cell
    n1: np.ndarray  # N1 per grid cell (for the guarantee)


def _phases(d_ms: int, g_ms: int) -> list[int]:
    """Remaining overhead (ms) at the start of each overhead phase, ending with 0."""
    rems = [d_ms] if d_ms > 0 else [0]
    while rems[-1] > 0:
        nxt = max(rems[-1] - g_ms, 0)
        rems.append(nxt if nxt >= 1 else 0)  # < 1e-3 s counts as 0
    return rems


def _model(work_s: float, overhead_s: float, gap_s: float, price_spot: float,
           price_od: float) -> _Model:
    g_ms = round(gap_s * 1000)
    d_ms = round(overhead_s * 1000)
    if g_ms <= 0:
        raise ValueError("gap_s must be positive")
    if d_ms < 0:
        raise ValueError("overhead_s must be >= 0")
    rems = _phases(d_ms, g_ms)
    k = len(rems) - 1
    y_ms = [max(g_ms - r, 0) for r in rems]
    unit = g_ms
    for y in y_ms:
        unit = math.gcd(unit, y)
    p = max(math.ceil((work_s * 1000 - 1) / unit), 0)  # done when C0 - W <= 1e-3 s
    if p > MAX_GRID:
        raise ValueError(
            f"progress grid of {p} cells (unit {unit} ms) is too fine for an exact DP; "
            "round the restart overhead or the tick to whole seconds"
        )
    types = [NONE] + [SPOT] * (k + 1) + [OD] * (k + 1)
    rem_s = [0.0] + [r / 1000 for r in rems] * 2
    yields = [0] + [y // unit for y in y_ms] * 2
    tick_h = g_ms / 1000 / 3600
    costs = [0.0] + [price_spot * tick_h] * (k + 1) + [price_od * tick_h] * (k + 1)
    # N1 = ceil((C + d) / g) * g per cell, computed like the simulator (float seconds).
    work_done = np.arange(p, dtype=np.int64) * unit / 1000.0
    g, d = g_ms / 1000.0, d_ms / 1000.0
    n1 = np.ceil((work_s - work_done + d) / g) * g
    return _Model(np.array(types, TYPE_DTYPE), np.array(rem_s), np.array(yields, np.int64),
                  np.array(costs), k, p, unit / 1000.0, n1)


class _Dp:
    """The forward DP; :meth:`step` maps the values of tick t to those of tick t + 1."""

    def __init__(self, m: _Model, avail: np.ndarray, work_s: float, deadline_s: float,
                 gap_s: float, guarantee: bool) -> None:
        self.m = m
        self.avail = avail
        self.work_s = work_s
        self.deadline_s = deadline_s
        self.g = gap_s
        self.cells_per_tick = round(gap_s / m.unit_s)
        self.neg_n1 = -m.n1  # non-decreasing: N1 shrinks as work is done
        self.guarantee = guarantee
        k = m.k
        self.n_rows = 2 * k + 3
        self.spot_rows = list(range(1, k + 2))
        self.od_rows = list(range(k + 2, 2 * k + 3))
        # Rows whose tick ends with no overhead left ("prev SPOT and rem < 1e-3" next tick).
        self.spot_clean = [1 + max(k - 1, 0), 1 + k] if k >= 1 else [1]
        self.spot_dirty = [r for r in self.spot_rows if r not in self.spot_clean]

    # -- helpers -----------------------------------------------------------------------------
    def _trigger_count(self, t: int) -> int:
        """Cells w < this count are under the final guarantee at decision t (N1 >= Rq)."""
        if not self.guarantee:
            return 0
        rq = math.floor((self.deadline_s - t * self.g) / self.g) * self.g
        return int(np.searchsorted(self.neg_n1, -rq, side="right"))

    def window(self, t: int) -> tuple[int, int]:
        """Cells [lo, hi) that matter at decision t: reachable, and still able to finish."""
        m = self.m
        hi = min(m.p, t * self.cells_per_tick + 1)
        short = self.work_s - EPS - (self.deadline_s - t * self.g)
        lo = max(0, math.ceil(short / m.unit_s) - 1)
        return lo, hi

    def initial(self) -> np.ndarray:
        """Values at tick 0: every row that can start from nothing, with no work done."""
        m = self.m
        v = np.full((self.n_rows, m.p), _INF)
        trig = self._trigger_count(0) > 0
        v[0, 0] = _INF if trig else 0.0
        if self.avail[0] and not trig:
            v[1, 0] = 0.0
        v[self.od_rows[0], 0] = 0.0
        return v

    def finish(self, v: np.ndarray, t: int) -> tuple[float, int, int]:
        """Cheapest run whose work completes in tick t: (cost, row, cell)."""
        m = self.m
        best = (_INF, -1, -1)
        w_lo, w_hi = self.window(t)
        for r in range(1, self.n_rows):
            y = int(m.yields[r])
            lo = max(m.p - y, w_lo)
            if y == 0 or lo >= w_hi:
                continue
            i = int(np.argmin(v[r, lo:w_hi]))
            c = float(v[r, lo + i]) + m.costs[r]
            if c < best[0]:
                best = (c, r, lo + i)
        return best

    def step(self, v: np.ndarray, t: int, track: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Values of tick t + 1 from those of tick t, and (if ``track``) the source row per
        cell of the window of tick t + 1 (``None`` otherwise)."""
        m, k, n_rows = self.m, self.m.k, self.n_rows
        lo, hi = self.window(t + 1)
        width = hi - lo
        out = np.full((n_rows, m.p), _INF)
        if width <= 0:
            return out, (np.zeros((n_rows, 0), np.int8) if track else None)
        # sh[r]: value of arriving at cell lo + i after row r's tick t.
        sh = np.full((n_rows, width), _INF)
        sh[0] = v[0, lo:hi]
        for r in range(1, n_rows):
            y = int(m.yields[r])
            a = max(lo - y, 0)
            if a < hi - y:
                sh[r, a + y - lo:] = v[r, a : hi - y] + m.costs[r]

        def best(*cands: tuple[np.ndarray, np.ndarray | int]) -> tuple[np.ndarray, object]:
            """Cellwise min of (value, source row) candidates, the first winning ties."""
            val, src = cands[0]
            for cv, cs in cands[1:]:
                if track:
                    better = cv < val
                    src = np.where(better, cs, src)
                val = np.minimum(val, cv)
            return val, src

        # Pre-decision states of tick t + 1: (type, phase after one more tick); the last
        # phase gathers rows k - 1 and k (both end with no overhead left).
        def pre(rows: list[int]) -> list[tuple[np.ndarray, np.ndarray | int]]:
            if k == 0:
                return [(sh[rows[0]], rows[0])]
            ps = [(sh[rows[j - 1]], rows[j - 1]) for j in range(1, k)]
            return ps + [best((sh[rows[k - 1]], rows[k - 1]), (sh[rows[k]], rows[k]))]

        pre_s, pre_o = pre(self.spot_rows), pre(self.od_rows)
        any_s, any_o = best(*pre_s), best(*pre_o)
        none = (sh[0], 0)
        av = bool(self.avail[t + 1])
        win = out[:, lo:hi]
        src = np.zeros((n_rows, width), dtype=np.int8) if track else None

        def put(row: int, cand: tuple[np.ndarray, object], a: int = 0) -> None:
            win[row, a:] = cand[0][a:] if np.ndim(cand[0]) else cand[0]
            if track:
                cs = cand[1]
                src[row, a:] = cs[a:] if np.ndim(cs) else cs

        # Phase j of a continuing run comes from pre-state phase j (j = 1..k; 0 when k = 0).
        first = 1 if k else 0
        put(0, best(none, any_s, any_o))
        if av:
            put(self.spot_rows[0], best(none, any_o) if k else best(none, any_o, any_s))
            for j, c in enumerate(pre_s[1:] if not k else pre_s, start=first):
                if j:
                    put(self.spot_rows[j], c)
        put(self.od_rows[0], best(none, any_s) if k else best(none, any_s, any_o))
        for j, c in enumerate(pre_o, start=first):
            if j:
                put(self.od_rows[j], c)
        thr = min(max(self._trigger_count(t + 1) - lo, 0), width)
        if thr > 0:
            # Under the guarantee: keep a clean spot instance (NONE if preempted), else OD.
            win[:, :thr] = _INF
            clean = pre_s[-1]
            sel = (clean[0][:thr], clean[1][:thr] if np.ndim(clean[1]) else clean[1])
            row = self.spot_rows[k] if av else 0
            win[row, :thr] = sel[0]
            if track:
                src[row, :thr] = sel[1]
            dirty = [(c[0][:thr], c[1]) for c in pre_s[:-1]]
            to_od = best((none[0][:thr], 0), *dirty, *([] if k else [
                (pre_o[0][0][:thr], pre_o[0][1])]))
            win[self.od_rows[0], :thr] = to_od[0]
            if track:
                src[self.od_rows[0], :thr] = to_od[1]
            for j, c in enumerate(pre_o, start=first):
                if j:
                    win[self.od_rows[j], :thr] = c[0][:thr]
                    if track:
                        src[self.od_rows[j], :thr] = c[1][:thr] if np.ndim(c[1]) else c[1]
        return out, src


def optimum_cost(
    avail: np.ndarray,
    work_s: float,
    deadline_s: float,
    overhead_s: float,
    gap_s: float,
    price_spot: float,
    price_od: float,
    *,
    guarantee: bool = False,
    schedule: bool = True,
) -> OptimumResult:
    """The cheapest way to finish ``work_s`` seconds of work by ``deadline_s`` on this trace.

    ``avail[t]`` says whether spot can be had during tick t (ticks past the end of ``avail``
    count as unavailable). Meeting the deadline means being done at a decision point no later
    than ``deadline_s``, as the replay engine counts it; ticks are billed in full. See the
    module docstring for ``guarantee``; ``schedule=False`` skips the back-pointers (faster).
    """
    avail = np.asarray(avail, dtype=bool)
    if work_s <= EPS:
        return OptimumResult(0.0, np.zeros(0, TYPE_DTYPE) if schedule else None, 0.0, 0.0)
    m = _model(work_s, overhead_s, gap_s, price_spot, price_od)
    g = round(gap_s * 1000) / 1000.0
    horizon = max(math.floor(deadline_s / g + 1e-9), 0)  # ticks that end by the deadline
    if avail.size < horizon + 1:
        avail = np.concatenate([avail, np.zeros(horizon + 1 - avail.size, bool)])
    dp = _Dp(m, avail, work_s, deadline_s, g, guarantee)
    store = schedule and horizon * dp.n_rows * m.p <= _MAX_CHOICE_CELLS
    every = max(int(math.sqrt(horizon)), 1) if schedule and not store else 0
    best = (_INF, -1, -1, -1)
    choices: list[tuple[int, np.ndarray]] = []
    checkpoints: dict[int, np.ndarray] = {}
    v = dp.initial()
    for t in range(horizon):
        if every and t % every == 0:
            checkpoints[t] = v
        c, r, w = dp.finish(v, t)
        if c < best[0] - 1e-12:
            best = (c, r, w, t)
        if t + 1 < horizon:
            v, src = dp.step(v, t, store)
            if store:
                choices.append((dp.window(t + 1)[0], src))
    cost, row, cell, t_end = best
    if not np.isfinite(cost):
        return OptimumResult(_INF, None, _INF, _INF)
    work_end = t_end * g + float(m.rows_rem[row]) + work_s - cell * m.unit_s
    if not schedule:
        return OptimumResult(cost, None, (t_end + 1) * g, work_end)
    rows = np.empty(t_end + 1, dtype=np.int64)
    rows[t_end] = row
    if store:
        _backtrack(m, choices, rows, t_end, cell, 0)
    else:
        # Recompute back-pointers one checkpoint segment at a time, latest first.
        hi, r_cell = t_end, cell
        for start in sorted((s for s in checkpoints if s <= t_end), reverse=True):
            vv, seg = checkpoints[start], []
            for t in range(start, hi):
                vv, src = dp.step(vv, t, True)
                seg.append((dp.window(t + 1)[0], src))
            r_cell = _backtrack(m, seg, rows, hi, r_cell, start)
            hi = start
    return OptimumResult(cost, m.rows_type[rows], (t_end + 1) * g, work_end)


def _backtrack(m: _Model, choices: list[tuple[int, np.ndarray]], rows: np.ndarray, t_end: int,
               cell: int, t0: int) -> int:
    """Fill ``rows[t0:t_end]`` from back-pointers of ticks t0+1..t_end; return the cell at t0."""
    for t in range(t_end, t0, -1):
        lo, src = choices[t - t0 - 1]
        r = int(src[rows[t], cell - lo])
        rows[t - 1] = r
        cell -= int(m.yields[r])
    return cell
