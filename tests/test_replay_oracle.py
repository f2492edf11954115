"""The replay engine reproduces the paper simulator's costs on all 1,080 ADRS runs (1e-6)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import BENCH_TSV, REPO

ORACLE = BENCH_TSV
SHIPPED_RUNS = REPO / "traces" / "runs" / "adrs_single_region_eval.tsv"
COLUMNS = {"uniform_progress": "cost_uniform_progress", "greedy": "cost_greedy",
           "on_demand": "cost_on_demand"}

@pytest.fixture(scope="module")
def oracle_rows() -> list[dict]:
    return list(csv.DictReader(ORACLE.open(), delimiter="\t"))


@pytest.fixture(scope="module")
def oracle_result():
    from skybroker.replay import replay_runs

    return replay_runs(ORACLE, list(COLUMNS))


@pytest.mark.parametrize("policy", list(COLUMNS))
def test_every_row_matches_the_papers_simulator(policy, oracle_rows, oracle_result):
    got = oracle_result.costs(policy)
    want = np.array([float(r[COLUMNS[policy]]) for r in oracle_rows])
    assert len(got) == len(want) == 1080
    diff = np.abs(got - want)
    worst = int(diff.argmax())
    assert diff.max() < 1e-6, f"row {worst}: {oracle_rows[worst]} -> {got[worst]}"


def test_published_means(oracle_result):
    s = oracle_result.summary
    assert s["uniform_progress"]["mean_cost"] == pytest.approx(92.06, abs=0.005)
    assert s["greedy"]["mean_cost"] == pytest.approx(96.52, abs=0.005)
    assert s["on_demand"]["mean_cost"] == pytest.approx(147.90, abs=0.005)
    assert all(v["misses"] == 0 for v in s.values())


def test_records_follow_the_runs_file_order(oracle_rows, oracle_result):
    up = [r for r in oracle_result.records if r["policy"] == "uniform_progress"]
    assert [r["run"] for r in up] == list(range(1080))
    assert [(r["start_tick"], r["deadline_h"]) for r in up[:5]] == [
        (int(o["start_tick"]), float(o["deadline_h"])) for o in oracle_rows[:5]]
    for r in up[:50]:
        assert r["spot_h"] + r["od_h"] + r["idle_h"] == pytest.approx(r["finish_h"])


def test_shipped_runs_and_traces_give_the_same_costs(oracle_result):
    """The product's own copy (traces/) is the same data: same costs without ../shared."""
    from skybroker.replay import replay_runs

    mine = replay_runs(SHIPPED_RUNS, ["uniform_progress"])
    assert np.array_equal(mine.costs("uniform_progress"), oracle_result.costs("uniform_progress"))


def test_optimum_pseudo_policy_matches_the_reference_column(oracle_rows, tmp_path):
    """Through replay's optimum path (same windows, prices, nodes): the reference optimum."""
    from skybroker.replay import optimum_available, replay_runs

    assert optimum_available()
    sample = oracle_rows[::54]  # 20 rows across traces, deadlines and overheads
    runs = tmp_path / "runs.tsv"
    cols = ["trace", "start_tick", "length_ticks", "duration_h", "deadline_h", "restart_overhead_h"]
    runs.write_text("\t".join(cols) + "\n" + "".join(
        "\t".join([str((ORACLE.parent / r["trace"]).resolve())] + [r[c] for c in cols[1:]]) + "\n"
        for r in sample))
    got = replay_runs(runs, ["optimum"]).costs("optimum")
    want = np.array([float(r["cost_optimum"]) for r in sample])
    assert np.abs(got - want).max() < 1e-6
