"""Replay throughput: the vectorised engine vs a scalar per-run Python loop, same runs, same run.

    python benchmarks/bench_replay.py [--policy uniform_progress] [--repeat 7] [--check]

Workload: the 1,080 ADRS runs shipped in traces/runs/ (4 traces x 30 windows x 3 deadlines x
3 overheads, 10-minute ticks). A run-tick is one decision point of one run (a run finishing at
tick f counts f), the same unit for both engines. Both are timed with wall clock, best of
``--repeat`` for the engine (one pass for the slow scalar loop); CPU time is printed too,
because on a shared machine wall clock also measures the neighbours. Bars (issue 3):
>= 6M run-ticks/s and >= 10x the scalar loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the scalar reference lives with the tests

from test_replay_reference import reference_run  # noqa: E402

from skybroker.policy import canonical_name, get_policy  # noqa: E402
from skybroker.replay.engine import make_batch, simulate  # noqa: E402
from skybroker.replay.runs import TraceCache, load_runs  # noqa: E402

RUNS = REPO / "traces" / "runs" / "adrs_single_region_eval.tsv"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policy", default="uniform_progress")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--check", action="store_true", help="exit 1 when a bar is missed")
    args = ap.parse_args()
    policy = canonical_name(args.policy)

    specs = load_runs(RUNS)
    cache = TraceCache()
    avail = [cache.window(s).available(s.nodes) for s in specs]
    h = 3600.0
    work = np.array([s.duration_h * h for s in specs])
    deadline = np.array([s.deadline_h * h for s in specs])
    overhead = np.array([s.restart_overhead_h * h for s in specs])
    gap = np.array([cache.get(s.traces[0]).gap_s for s in specs])
    batch = make_batch(avail, work, deadline, overhead, gap)
    pol = get_policy(policy)

    simulate(batch, pol)  # warm-up
    best_wall, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(args.repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = simulate(batch, pol)
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    assert out is not None
    run_ticks = int(out.finish_ticks.sum())
    assert run_ticks == out.run_ticks

    lists = [a.tolist() for a in avail]
    w0, c0 = time.perf_counter(), time.process_time()
    ref_ticks = 0
    ref_cost = np.empty(len(specs))
    for i in range(len(specs)):
        ref_cost[i], fin = reference_run(lists[i], policy, work[i], deadline[i], overhead[i], gap[i])
        ref_ticks += fin
    s_wall, s_cpu = time.perf_counter() - w0, time.process_time() - c0
    assert ref_ticks == run_ticks, (ref_ticks, run_ticks)
    same = float(np.abs(ref_cost - out.cost).max())

    v_rate, s_rate = run_ticks / best_wall, run_ticks / s_wall
    v_cpu, s_cpu_rate = run_ticks / best_cpu, run_ticks / s_cpu
    print(f"policy {policy}: {len(specs)} runs, {run_ticks:,} run-ticks "
          f"(max |cost diff| vectorised vs scalar = {same:.1e} $)")
    print(f"{'engine':<22}{'seconds':>10}{'run-ticks/s':>16}{'cpu run-ticks/s':>18}")
    print(f"{'vectorised (numpy)':<22}{best_wall:>10.4f}{v_rate / 1e6:>15.2f}M{v_cpu / 1e6:>17.2f}M")
    print(f"{'scalar Python loop':<22}{s_wall:>10.4f}{s_rate / 1e6:>15.2f}M{s_cpu_rate / 1e6:>17.2f}M")
    ratio, ratio_cpu = v_rate / s_rate, v_cpu / s_cpu_rate
    print(f"ratio: {ratio:.1f}x (wall), {ratio_cpu:.1f}x (cpu)")
    ok_wall = v_rate >= 6e6 and ratio >= 10
    ok_cpu = v_cpu >= 6e6 and ratio_cpu >= 10
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bars (>= 6M run-ticks/s, >= 10x scalar): wall {'met' if ok_wall else 'MISSED'}, "
          f"cpu {'met' if ok_cpu else 'MISSED'}  (load average {load:.1f} on {os.cpu_count()} cpus)")
    return 0 if ok_wall or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
