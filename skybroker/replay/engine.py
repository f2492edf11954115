"""The vectorised replay engine: numpy over runs, a Python loop over ticks.

Implements the tick semantics of the paper's simulator exactly (``docs/replay.md``):

1. credit the previous tick: ``max(g - rem, 0)`` seconds of work, capped at what is left;
   ``rem`` drops by what the tick did not yield (under 1e-3 s counts as 0);
2. a run with at most 1e-3 s of work left is done (finish time = this decision point);
3. ``cur`` = ``prev``, NONE if a spot instance was preempted (its zone is unavailable now);
4. the policy proposes, then `skybroker.policy.finalize` applies the shared guarantee;
5. a change to a non-NONE type (or another zone) is a restart: ``rem = d``;
6. the tick runs and a SPOT or OD tick is billed in full (times ``nodes``).

Beyond the end of a run's trace window spot counts as unavailable, so every run terminates
(the guarantee puts it on on-demand). Finished runs are compacted out of the arrays so late
ticks only pay for the runs still going.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skybroker.policy.base import EPS, NONE, SPOT, TYPE_DTYPE, RunState, finalize

DEFAULT_PRICE_OD = 3.06
DEFAULT_PRICE_SPOT = 0.9731


@dataclass
class Batch:
    """Runs to advance together. Times in seconds; ``avail`` is (ticks, n) or (ticks, n, zones)."""

    avail: np.ndarray
    window: np.ndarray  # ticks of trace each run has (spot is unavailable after that)
    work: np.ndarray
    deadline: np.ndarray
    overhead: np.ndarray
    gap: np.ndarray
    price_spot: np.ndarray
    price_od: np.ndarray
    nodes: np.ndarray

    @property
    def n(self) -> int:
        return int(self.work.shape[0])


@dataclass
class Outcome:
    """Per-run results (arrays of shape (n,)); ticks are in each run's own tick length."""

    cost: np.ndarray
    finish_ticks: np.ndarray
    spot_ticks: np.ndarray
    od_ticks: np.ndarray
    idle_ticks: np.ndarray
    switches: np.ndarray
    preemptions: np.ndarray
    run_ticks: int  # total decision points simulated over all runs (the throughput unit)
    timeline: dict[str, np.ndarray] | None = None  # per tick, for run 0, when recorded


def _horizon(b: Batch) -> int:
    """A tick count every run is done by: the deadline plus an on-demand run of the whole job."""
    t = np.ceil(np.maximum(b.deadline, 0) / b.gap) + np.ceil((b.work + b.overhead) / b.gap) + 3
    return int(t.max()) if b.n else 0


def simulate(batch: Batch, policy, record: bool = False) -> Outcome:
    """Advance every run of ``batch`` under ``policy`` until all are done."""
    n = batch.n
    multi = batch.avail.ndim == 3
    zones = batch.avail.shape[2] if multi else 1
    horizon = _horizon(batch)
    avail = batch.avail
    ticks_avail = avail.shape[0]

    # Per-run results by original run id, filled as runs finish.
    finish = np.full(n, -1, dtype=np.int64)
    spot_t = np.zeros(n, dtype=np.int64)
    od_t = np.zeros(n, dtype=np.int64)
    switches = np.zeros(n, dtype=np.int64)
    preempt = np.zeros(n, dtype=np.int64)

    # Working arrays for the runs still in the batch. Finished runs stay (frozen on NONE)
    # until they are a quarter of the batch, then the arrays are compacted: per-op overhead,
    # not array length, dominates numpy at these sizes.
    ids = np.arange(n)
    work, dl, d = batch.work.copy(), batch.deadline.copy(), batch.overhead.copy()
    g: np.ndarray | float = batch.gap.copy()
    if np.all(batch.gap == batch.gap[0]):
        g = float(batch.gap[0])  # scalar ops are cheaper, same values
    w = np.zeros(n)
    rem = np.zeros(n)
    prev = np.zeros(n, dtype=TYPE_DTYPE)
    zone = np.full(n, -1, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    n_alive = n
    c_sw, c_pre = np.zeros(n, np.int64), np.zeros(n, np.int64)
    memory = policy.init_memory(n)
    rows = np.arange(n)
    zero8 = np.zeros(n, dtype=TYPE_DTYPE)
    none_av = np.zeros((n, zones) if multi else n, dtype=bool)
    run_ticks = 0
    tl: dict[str, list] | None = {"kind": [], "work": [], "avail": [], "zone": []} if record else None

    c_run = np.zeros(n, np.int64)  # ticks run on SPOT or OD
    c_x = np.zeros(n, np.int64)  # sum of the type codes: SPOT=1, OD=2, so od = c_x - c_run
    elapsed = np.zeros(n)
    for t in range(horizon + 1):
        # 1. credit the previous tick (a NONE tick has g_eff = 0: no work, rem unchanged)
        if t:
            running = prev != NONE
            c_run += running
            g_eff = running * g
            y = g_eff - rem
            np.maximum(y, 0.0, out=y)
            np.minimum(y, work - w, out=y)
            w += y
            rem -= g_eff
            rem[rem < EPS] = 0.0  # also clears the negatives
            elapsed += g
        # 2. finished runs record their results and freeze (on NONE)
        done = work - w <= EPS  # C = C0 - W, exactly as the simulator computes it
        if n_alive != done.shape[0] or done.any():
            new = done & alive
            if new.any():
                fid = ids[new]
                finish[fid] = t
                spot_t[fid] = 2 * c_run[new] - c_x[new]
                od_t[fid] = c_x[new] - c_run[new]
                switches[fid], preempt[fid] = c_sw[new], c_pre[new]
                alive &= ~new
                n_alive -= int(new.sum())
                if n_alive == 0:
                    break
                if n_alive * 4 <= 3 * alive.shape[0]:
                    k = alive
                    ids, work, dl, d, w, rem, prev, zone = (ids[k], work[k], dl[k], d[k], w[k],
                                                            rem[k], prev[k], zone[k])
                    elapsed = elapsed[k]
                    c_run, c_x, c_sw, c_pre = c_run[k], c_x[k], c_sw[k], c_pre[k]
                    if not np.isscalar(g):
                        g = g[k]  # type: ignore[index]
                    avail = avail[:, k]
                    memory = {key: v[k] for key, v in memory.items()}
                    alive = np.ones(n_alive, dtype=bool)
                    rows = np.arange(n_alive)
                    none_av, zero8 = none_av[:n_alive], zero8[:n_alive]
        run_ticks += n_alive
        # 3. availability now, and preemptions
        av = avail[t] if t < ticks_avail else none_av
        here = av[rows, np.maximum(zone, 0)] & (zone >= 0) if multi else av
        pre = np.greater(prev == SPOT, here)  # was on spot, spot gone here (a > b is a & ~b)
        cur = np.where(pre, zero8, prev)
        state = RunState(elapsed, w, work, dl, d, rem, prev, cur, av, g, zone if multi else None)
        # 4. propose, then the shared guarantee
        dec = finalize(state, policy.decide(state, memory))
        x = dec.kind
        if n_alive != x.shape[0]:
            x[~alive] = NONE
        # 5. restarts
        restart = np.logical_and(x != cur, x)  # changed to something other than NONE
        if multi:
            restart |= (x == SPOT) & (cur == SPOT) & (dec.zone != zone)
            zone = dec.zone
        np.copyto(rem, d, where=restart)
        # 6. run the tick (billing is ticks x price, summed at the end)
        c_x += x
        c_sw += restart
        c_pre += pre
        prev = x
        if tl is not None and ids[0] == 0 and alive[0]:
            tl["kind"].append(int(x[0]))
            tl["work"].append(float(w[0]))
            tl["avail"].append(bool(state.spot_any[0]))
            tl["zone"].append(int(zone[0]) if multi else 0)
    if (finish < 0).any():  # cannot happen within the horizon; keep the invariant visible
        raise RuntimeError("replay: some runs did not finish within the horizon")
    bill = batch.gap / 3600.0 * batch.nodes
    cost = spot_t * (batch.price_spot * bill) + od_t * (batch.price_od * bill)
    idle = np.maximum(finish - spot_t - od_t, 0)
    timeline = {k: np.asarray(v) for k, v in tl.items()} if tl is not None else None
    return Outcome(cost, finish, spot_t, od_t, idle, switches, preempt, run_ticks, timeline)


def make_batch(
    avail: list[np.ndarray],
    work_s: np.ndarray,
    deadline_s: np.ndarray,
    overhead_s: np.ndarray,
    gap_s: np.ndarray,
    price_spot: float | np.ndarray = DEFAULT_PRICE_SPOT,
    price_od: float | np.ndarray = DEFAULT_PRICE_OD,
    nodes: int | np.ndarray = 1,
) -> Batch:
    """Stack per-run availability windows (bool, (ticks,) or (ticks, zones)) into a Batch."""
    n = len(avail)
    if n == 0:
        raise ValueError("no runs to replay")
    t_max = max(a.shape[0] for a in avail)
    multi = avail[0].ndim == 2
    if multi:
        z = max(a.shape[1] for a in avail)
        mat = np.zeros((t_max, n, z), dtype=bool)
        for i, a in enumerate(avail):
            mat[: a.shape[0], i, : a.shape[1]] = a
    else:
        mat = np.zeros((t_max, n), dtype=bool)
        for i, a in enumerate(avail):
            mat[: a.shape[0], i] = a
    full = np.broadcast_to
    return Batch(
        avail=mat,
        window=np.asarray([a.shape[0] for a in avail], dtype=np.int64),
        work=np.asarray(work_s, dtype=float).copy(),
        deadline=np.asarray(deadline_s, dtype=float).copy(),
        overhead=np.asarray(overhead_s, dtype=float).copy(),
        gap=np.asarray(gap_s, dtype=float).copy(),
        price_spot=full(np.asarray(price_spot, dtype=float), (n,)).copy(),
        price_od=full(np.asarray(price_od, dtype=float), (n,)).copy(),
        nodes=full(np.asarray(nodes, dtype=float), (n,)).copy(),
    )
