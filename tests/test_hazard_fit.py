"""Fitting Hazard DP's run-length model: the shipped constants are reproducible from the
traces, the estimator counts what it says (ages, censoring, tick conversion), and a fitted
model reaches the policy through the Python API and `sky replay`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO

from skybroker.cli import cli
from skybroker.policy import get_policy
from skybroker.policy.hazard_dp import HAZARD_600, HazardDP
from skybroker.policy.hazard_fit import (
    HazardFileError,
    fit_hazards,
    load_hazards,
    save_hazards,
)
from skybroker.replay import api
from skybroker.replay.engine import make_batch, simulate
from skybroker.traces import Trace, load_trace

ONE_NODE = REPO / "traces/spot-traces/availability/1-node/aws-10-26-2022"


def test_shipped_hazards_are_the_fit_on_the_k80_traces():
    fitted = fit_hazards([load_trace(ONE_NODE / f"us-west-2{z}_k80_1.json") for z in "ab"])
    assert np.allclose(fitted, HAZARD_600, atol=1e-3), np.round(fitted, 4)


def test_counts_ages_and_censoring_exactly():
    # Outages of exactly 1 tick, spot runs of exactly 3 ticks; the trace ends inside a run.
    avail = np.array(([0] + [1] * 3) * 20 + [0, 1], dtype=bool)
    h = fit_hazards([(avail, 600.0)], prior_weight=0.0)
    assert h[0, 0] == pytest.approx(1.0)  # every outage ends at age 1
    assert h[1, 0] == pytest.approx(0.0)  # no run ends at age 1 ...
    # ... ages 2-3: 20 ticks at age 2 (none end) and 20 at age 3 (all end). The censored last
    # run (age 1, unseen end) adds exposure to bucket 0 only, never an end.
    assert h[1, 1] == pytest.approx(0.5)


def test_ticks_convert_to_the_model_step():
    # 300 s ticks: a per-tick hazard p becomes 1 - (1 - p)^2 per 600 s step. Outages last
    # 1 tick (age 0.5 step), spot runs 2 ticks (ages 0.5 and 1 step): all in bucket 0.
    avail = np.array(([0] + [1] * 2) * 30 + [0], dtype=bool)
    h = fit_hazards([(avail, 300.0)], prior_weight=0.0)
    # bucket 0 holds spot ticks at ages 0.5 and 1.0 steps: half end -> per tick 0.5 -> 0.75.
    assert h[1, 0] == pytest.approx(0.75)
    # 31 outage ticks, 30 ends (the last outage is censored): per tick 30/31.
    assert h[0, 0] == pytest.approx(1.0 - (1.0 / 31.0) ** 2)


def test_unseen_buckets_fall_back_to_the_shipped_model():
    avail = np.array([1, 0] * 50, dtype=bool)  # never older than one step
    h = fit_hazards([(avail, 600.0)])
    assert np.allclose(h[:, 1:], HAZARD_600[:, 1:])
    assert h[0, 0] > 0.95 and h[1, 0] > 0.95


def test_bad_inputs_say_what_to_fix(tmp_path):
    with pytest.raises(ValueError, match="one tick length"):
        fit_hazards([(np.ones(10, bool), 600.0), (np.ones(10, bool), 32.0)])
    with pytest.raises(ValueError, match="no trace"):
        fit_hazards([])
    with pytest.raises(ValueError, match="2 rows"):
        HazardDP(hazards=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        HazardDP(hazards=HAZARD_600 * 10)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(HazardFileError, match="not a hazards file"):
        load_hazards(bad)
    bad.write_text("{not json")
    with pytest.raises(HazardFileError, match="cannot read"):
        load_hazards(bad)


def test_save_load_round_trip_and_policy_reads_a_path(tmp_path):
    h = fit_hazards([load_trace(ONE_NODE / "us-west-2a_k80_8.json")])
    path = tmp_path / "h.json"
    save_hazards(h, path, source="k80_8")
    assert json.loads(path.read_text())["source"] == "k80_8"
    assert np.allclose(load_hazards(path), h, atol=1e-6)
    assert np.allclose(HazardDP(hazards=str(path)).hazard, h, atol=1e-6)


def _flicker_runs():
    """Runs where the model matters: a 1-tick-outage flicker, tight deadline, 0.4 h restarts."""
    rng = np.random.default_rng(3)
    wins = []
    for _ in range(6):
        a = np.ones(80, dtype=bool)
        a[rng.choice(80, 12, replace=False)] = False
        wins.append(a)
    n = len(wins)
    return wins, np.full(n, 10 * 3600.0), np.full(n, 11.5 * 3600.0), np.full(n, 1440.0)


def test_fitted_model_changes_decisions_and_reaches_the_api():
    wins, work, deadline, d = _flicker_runs()
    batch = make_batch(wins, work, deadline, d, np.full(len(wins), 600.0))
    shipped = simulate(batch, get_policy("best"))
    h = fit_hazards([(w, 600.0) for w in wins])  # outages here always end within a tick
    fitted = simulate(batch, HazardDP(hazards=h))
    for out in (shipped, fitted):
        assert np.all(out.finish_ticks * 600.0 <= deadline + 1e-6)
    # The shipped model fears that an outage lasts (pooled over a trace that is mostly down);
    # the fitted one waits the flicker out instead of paying two restarts: cheaper here.
    assert fitted.cost.mean() < shipped.cost.mean() - 0.5
    # The same model through the replay API (aliases accepted for the parameters' policy).
    trace = Trace(np.concatenate(wins).astype(np.int64), 600.0, "flicker")
    res = api.replay(trace, "best", 10.0, 11.5, 0.4, start_tick=80, length_ticks=80,
                     policy_params={"best": {"hazards": h}})
    direct = simulate(make_batch([wins[1]], work[:1], deadline[:1], d[:1], np.array([600.0])),
                      HazardDP(hazards=h))
    assert res.records[0]["cost"] == pytest.approx(float(direct.cost[0]))


def test_cli_fit_save_and_reuse(tmp_path):
    out = tmp_path / "mine.json"
    run = CliRunner().invoke(cli, ["replay", "--fit-hazards", str(ONE_NODE / "us-west-2b_k80_8.json"),
                                   "--save-hazards", str(out)], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    assert "us-west-2b_k80_8.json" in json.loads(out.read_text())["source"]
    args = ["replay", "--trace", str(ONE_NODE / "us-west-2a_v100_1.json"), "--policy", "best",
            "--duration", "10h", "--deadline", "11.5h", "--restart-overhead", "0.4h",
            "--length-ticks", "80", "--json"]
    a = CliRunner().invoke(cli, [*args, "--hazards", str(out)], catch_exceptions=False)
    b = CliRunner().invoke(cli, [*args, "--fit-hazards", str(ONE_NODE / "us-west-2b_k80_8.json")],
                           catch_exceptions=False)
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    ca = json.loads(a.output)["runs"][0]["cost"]
    assert ca == pytest.approx(json.loads(b.output)["runs"][0]["cost"], abs=1e-6)
    both = CliRunner().invoke(cli, [*args, "--hazards", str(out), "--fit-hazards", str(out)])
    assert both.exit_code != 0 and "not both" in both.output
