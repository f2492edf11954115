"""The Python API: replay() sweeps, Trace objects, runs files, records, progress."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO

from skybroker.errors import SkyError, TraceError
from skybroker.replay import load_runs, replay, replay_runs, resolve_policies
from skybroker.traces import Trace

TRACE = REPO / "traces/spot-traces/availability/1-node/aws-10-26-2022/us-west-2a_v100_1.json"


def test_replay_sweeps_deadlines_and_records_are_json():
    res = replay(TRACE, "up,greedy,on_demand", duration_h=48, deadline_h=[52, 70, 92],
                 restart_overhead_h=0.2, length_ticks=554, timeline=True)
    up = [r for r in res.records if r["policy"] == "uniform_progress"]
    assert [r["deadline_h"] for r in up] == [52.0, 70.0, 92.0]
    assert up[0]["cost"] == pytest.approx(142.54205, abs=1e-6)
    costs = [r["cost"] for r in up]
    assert costs[0] > costs[1] > costs[2]  # looser deadline, more spot
    json.dumps(res.to_json())  # plain types only
    tl = res.timelines["uniform_progress"]
    assert len(tl["kind"]) == round(up[0]["finish_h"] * 6) and tl["gap_s"] == 600


def test_trace_objects_and_prices():
    t = Trace(np.array([1, 1, 0, 0, 1, 1] * 20), 600.0, "toy")
    res = replay(t, ["on_demand"], duration_h=2, deadline_h=4, restart_overhead_h=0,
                 price_od=1.0)
    assert res.records[0]["cost"] == pytest.approx(2.0)
    assert res.summary["on_demand"]["norm_cost"] == pytest.approx(1.0)


def test_progress_counts_every_run():
    seen = []
    replay_runs(REPO / "traces/runs/adrs_single_region_eval.tsv", "greedy", progress=seen.append)
    assert sum(seen) == 1080


def test_policy_resolution():
    assert resolve_policies("UP, greedy,up") == ["uniform_progress", "greedy"]
    with pytest.raises(SkyError, match="Did you mean"):
        resolve_policies("grredy")
    with pytest.raises(SkyError):
        resolve_policies("")


def test_runs_file_errors(tmp_path):
    p = tmp_path / "runs.tsv"
    p.write_text("trace\tstart_tick\n x.json\t0\n")
    with pytest.raises(TraceError, match="lacks column"):
        load_runs(p)
    p.write_text("trace,start_tick,length_ticks,duration_h,deadline_h,restart_overhead_h\n"
                 "x.json,0,ten,48,52,0.2\n")
    with pytest.raises(TraceError, match=r"runs.tsv:2: column 'length_ticks'"):
        load_runs(p)
    p.write_text("trace,start_tick,length_ticks,duration_h,deadline_h,restart_overhead_h\n"
                 "x.json+y.json,0,10,48,52,0.2\n")
    spec = load_runs(p)[0]
    assert len(spec.traces) == 2 and spec.traces[0].endswith("x.json")


def test_window_past_the_trace_is_an_error():
    with pytest.raises(TraceError, match="does not fit"):
        replay(TRACE, "up", duration_h=48, deadline_h=52, restart_overhead_h=0.2,
               start_tick=3800, length_ticks=554)


def test_optimum_pseudo_policy_when_available():
    from skybroker.replay import optimum_available

    if not optimum_available():
        pytest.skip("skybroker.policy.optimum not present")
    res = replay(TRACE, "up,optimum", duration_h=48, deadline_h=[52, 70], restart_overhead_h=0.2,
                 length_ticks=554)
    up, opt = res.costs("uniform_progress"), res.costs("optimum")
    assert np.all(opt <= up + 1e-9)
