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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from skybroker.policy.base import EPS, NONE, OD, SPOT, TYPE_DTYPE, RunState, finalize

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


_BLOCK = 64  # ticks of per-tick history kept before they are folded into counters


def simulate(batch: Batch, policy, record: bool = False,
             progress: Callable[[int], None] | None = None) -> Outcome:
    """Advance every run of ``batch`` under ``policy`` until all are done.

    ``record`` keeps run 0's per-tick decisions (for plots); ``progress(k)`` is called as
    runs finish, with how many just did (for progress bars over long batches).
    """
    n = batch.n
    multi = batch.avail.ndim == 3
    zones = batch.avail.shape[2] if multi else 1
    horizon = _horizon(batch)
    avail = batch.avail
    ticks_avail = avail.shape[0]

    # Results by original run id, written when slots are compacted away and at the end.
    finish = np.full(n, -1, dtype=np.int64)
    spot_o, od_o, sw_o, pre_o = (np.zeros(n, np.int64) for _ in range(4))

    # Working slots. A finished run stays in its slot, frozen on NONE (so it stops counting),
    # until finished runs are an eighth of the slots; then the arrays are compacted (the
    # availability matrix is not copied: each tick gathers its row through ``cols``). numpy's
    # per-call overhead, not array length, dominates at these sizes, so compaction stays rare.
    ids = np.arange(n)
    work, dl, d = batch.work.copy(), batch.deadline.copy(), batch.overhead.copy()
    g: np.ndarray | float = batch.gap.copy()
    if np.all(batch.gap == batch.gap[0]):
        g = float(batch.gap[0])  # scalar ops are cheaper, same values
    w, rem, elapsed = np.zeros(n), np.zeros(n), np.zeros(n)
    prev = np.zeros(n, dtype=TYPE_DTYPE)
    zone = np.full(n, -1, dtype=np.int64)
    fin = np.full(n, -1, dtype=np.int64)
    # Counters are folded from a block of per-tick history: copying a row per tick is far
    # cheaper than four casting additions per tick.
    c_spot, c_od, c_sw, c_pre = (np.zeros(n, np.int64) for _ in range(4))
    h_x = np.zeros((_BLOCK, n), dtype=TYPE_DTYPE)
    h_sw = np.zeros((_BLOCK, n), dtype=bool)
    h_pre = np.zeros((_BLOCK, n), dtype=bool)
    rows_used = 0
    memory = policy.init_memory(n)
    rows = np.arange(n)
    none_av = np.zeros((n, zones) if multi else n, dtype=bool)
    size, n_done, run_ticks = n, 0, 0
    cols = np.arange(n)  # column of each slot in avail
    done = np.zeros(n, dtype=bool)
    tl: dict[str, list] | None = {"kind": [], "work": [], "avail": [], "zone": []} if record else None

    def fold() -> None:
        nonlocal rows_used
        if rows_used:
            hx = h_x[:rows_used, :size]
            c_spot[:] += np.count_nonzero(hx == SPOT, axis=0)
            c_od[:] += np.count_nonzero(hx == OD, axis=0)
            c_sw[:] += np.count_nonzero(h_sw[:rows_used, :size], axis=0)
            c_pre[:] += np.count_nonzero(h_pre[:rows_used, :size], axis=0)
            rows_used = 0

    def flush(mask: np.ndarray | slice) -> None:
        o = ids[mask]
        finish[o], spot_o[o], od_o[o] = fin[mask], c_spot[mask], c_od[mask]
        sw_o[o], pre_o[o] = c_sw[mask], c_pre[mask]

    for t in range(horizon + 1):
        # 1. credit the previous tick (a NONE tick has g_eff = 0: no work, rem unchanged)
        if t:
            g_eff = np.where(prev != NONE, g, 0.0)
            y = g_eff - rem  # work yielded, where positive; minus the overhead still owed
            np.negative(y, out=rem)
            rem[rem < EPS] = 0.0  # rem drops by what the tick did not yield (negatives -> 0)
            np.maximum(y, 0.0, out=y)
            # The cap at C0 - W only ever binds on the finishing tick, where C <= EPS either
            # way, so it is left out: the outcome is identical, one numpy call cheaper.
            w += y
            elapsed += g
        # 2. done (C = C0 - W, as the simulator computes it); finished runs stay done
        done = work - w <= EPS
        k = int(np.count_nonzero(done))
        if k != n_done:
            fin[done & (fin < 0)] = t
            if progress is not None:
                progress(k - n_done)
            n_done = k
            if k == size:
                break
            if 8 * k >= size:
                fold()
                flush(done)
                keep = ~done
                ids, work, dl, d, w, rem, prev, zone, fin = (ids[keep], work[keep], dl[keep],
                                                             d[keep], w[keep], rem[keep],
                                                             prev[keep], zone[keep], fin[keep])
                elapsed, c_spot, c_od, c_sw, c_pre = (elapsed[keep], c_spot[keep], c_od[keep],
                                                      c_sw[keep], c_pre[keep])
                if not np.isscalar(g):
                    g = g[keep]  # type: ignore[index]
                cols = cols[keep]
                memory = {key: v[keep] for key, v in memory.items()}
                size, n_done = size - k, 0
                rows, none_av = rows[:size], none_av[:size]
                h_x, h_sw, h_pre = h_x[:, :size], h_sw[:, :size], h_pre[:, :size]
                done = np.zeros(size, dtype=bool)
        run_ticks += size - n_done
        # 3. availability now, and preemptions
        av = (avail[t][cols] if cols.shape[0] != n else avail[t]) if t < ticks_avail else none_av
        here = av[rows, np.maximum(zone, 0)] & (zone >= 0) if multi else av
        pre = np.greater(prev == SPOT, here)  # was on spot, spot gone here (a > b is a & ~b)
        cur = prev.copy()
        cur[pre] = NONE
        state = RunState(elapsed, w, work, dl, d, rem, prev, cur, av, g, zone if multi else None)
        # 4. propose, then the shared guarantee
        dec = finalize(state, policy.decide(state, memory))
        x = dec.kind
        if n_done:
            x[done] = NONE
        # 5. restarts
        restart = np.logical_and(x != cur, x)  # changed to something other than NONE
        if multi:
            restart |= (x == SPOT) & (cur == SPOT) & (dec.zone != zone)
            zone = dec.zone
        np.copyto(rem, d, where=restart)
        # 6. run the tick (billing is ticks x price, summed at the end)
        h_x[rows_used], h_sw[rows_used], h_pre[rows_used] = x, restart, pre
        rows_used += 1
        if rows_used == _BLOCK:
            fold()
        prev = x
        if tl is not None and ids[0] == 0 and not done[0]:
            tl["kind"].append(int(x[0]))
            tl["work"].append(float(w[0]))
            tl["avail"].append(bool(state.spot_any[0]))
            tl["zone"].append(int(zone[0]) if multi else 0)
    fold()
    flush(slice(None))
    if (finish < 0).any():  # cannot happen within the horizon; keep the invariant visible
        raise RuntimeError("replay: some runs did not finish within the horizon")
    bill = batch.gap / 3600.0 * batch.nodes
    cost = spot_o * (batch.price_spot * bill) + od_o * (batch.price_od * bill)
    idle = np.maximum(finish - spot_o - od_o, 0)
    timeline = {k: np.asarray(v) for k, v in tl.items()} if tl is not None else None
    return Outcome(cost, finish, spot_o, od_o, idle, sw_o, pre_o, run_ticks, timeline)


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
