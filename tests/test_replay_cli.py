"""`sky replay` end to end through click (CliRunner), on the shipped traces."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import REPO

from skybroker.cli import cli

TRACE = REPO / "traces/spot-traces/availability/1-node/aws-10-26-2022/us-west-2a_v100_1.json"
TRACE_B = REPO / "traces/spot-traces/availability/1-node/aws-10-26-2022/us-west-2b_v100_1.json"


def _run(*args):
    return CliRunner().invoke(cli, ["replay", *map(str, args)], catch_exceptions=False)


def test_single_trace_table():
    r = _run("--trace", TRACE, "--policy", "up,greedy,on_demand", "--duration", "48h",
             "--deadline", "52h", "--restart-overhead", "0.2h", "--length-ticks", "554")
    assert r.exit_code == 0, r.output
    for word in ("uniform_progress", "greedy", "on_demand", "mean $", "vs OD", "misses"):
        assert word in r.output


def test_json_records_and_summary():
    r = _run("--trace", TRACE, "--policy", "up,on_demand", "--duration", "48h", "--deadline",
             "52h,70h", "--restart-overhead", "0.2h", "--length-ticks", "554", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert [(x["policy"], x["deadline_h"]) for x in doc["runs"]] == [
        ("uniform_progress", 52.0), ("uniform_progress", 70.0), ("on_demand", 52.0), ("on_demand", 70.0)]
    for rec in doc["runs"]:
        for key in ("policy", "cost", "finish_h", "met", "spot_h", "od_h", "idle_h", "switches"):
            assert key in rec
    assert doc["runs"][0]["cost"] == pytest.approx(142.54205, abs=1e-6)
    assert doc["summary"]["on_demand"]["norm_cost"] == pytest.approx(1.0)


def test_runs_file_with_relative_paths(tmp_path):
    runs = tmp_path / "sub" / "runs.tsv"
    runs.parent.mkdir()
    rel = "../" + TRACE.name
    (tmp_path / TRACE.name).write_bytes(TRACE.read_bytes())
    runs.write_text("trace\tstart_tick\tlength_ticks\tduration_h\tdeadline_h\trestart_overhead_h\tnote\n"
                    f"{rel}\t0\t554\t48\t52\t0.2\tx\n{rel}\t100\t300\t24\t30\t0.02\ty\n")
    r = _run("--runs", runs, "--policy", "greedy", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert len(doc["runs"]) == 2 and doc["runs"][1]["start_tick"] == 100


def test_unknown_policy_suggests():
    r = _run("--trace", TRACE, "--policy", "uniform_progres", "--duration", "48h", "--deadline", "52h")
    assert r.exit_code != 0
    assert "Did you mean 'uniform_progress'" in r.output


def test_usage_errors():
    assert _run("--policy", "up").exit_code != 0  # neither --trace nor --runs
    r = _run("--trace", TRACE, "--duration", "48h")
    assert r.exit_code != 0 and "--deadline" in r.output
    r = _run("--trace", TRACE, "--duration", "forty", "--deadline", "52h")
    assert r.exit_code != 0 and "duration" in r.output


def test_multi_zone_and_nodes():
    r = _run("--trace", TRACE, "--trace", TRACE_B, "--policy", "up", "--duration", "24h",
             "--deadline", "30h", "--length-ticks", "300", "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.output)["runs"][0]
    assert rec["met"] and "+" in rec["trace"]
    gang = REPO / "traces/spot-traces/availability/16-node/aws-08-27-2023/us-west-2a_v100_1.json"
    r = _run("--trace", gang, "--nodes", "8", "--policy", "up,on_demand", "--duration", "12h",
             "--deadline", "16h", "--json")
    doc = json.loads(r.output)
    assert doc["summary"]["on_demand"]["mean_cost"] == pytest.approx(
        8 * 3.06 * doc["runs"][1]["od_h"], rel=1e-9)


def test_plot_writes_a_png(tmp_path):
    out = tmp_path / "r.png"
    r = _run("--trace", TRACE, "--policy", "up,greedy", "--duration", "12h", "--deadline", "16h",
             "--length-ticks", "200", "--plot", out)
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_help_and_list_policies():
    r = _run("--help")
    assert r.exit_code == 0 and "--restart-overhead" in r.output and "Examples" in r.output
    r = _run("--list-policies")
    assert "uniform_progress (alias:" in r.output


def test_summary_by_deadline_and_overhead(tmp_path):
    runs = tmp_path / "runs.tsv"
    (tmp_path / TRACE.name).write_bytes(TRACE.read_bytes())
    lines = ["trace\tstart_tick\tlength_ticks\tduration_h\tdeadline_h\trestart_overhead_h"]
    lines += [f"{TRACE.name}\t{s}\t300\t24\t{dl}\t0.2" for s in (0, 100) for dl in (26, 40)]
    runs.write_text("\n".join(lines) + "\n")
    r = _run("--runs", runs, "--policy", "up,greedy", "--by", "deadline", "--json")
    doc = json.loads(r.output)
    assert [g["group"] for g in doc["by"]] == [{"deadline_h": 26.0}, {"deadline_h": 40.0}]
    assert doc["by"][0]["summary"]["greedy"]["runs"] == 2
    r = _run("--runs", runs, "--policy", "up,greedy", "--by", "deadline,overhead")
    assert r.exit_code == 0 and "deadline" in r.output and "overhead" in r.output


def test_plot_deadline_grid_starts_feasible_and_keeps_the_deadline():
    from skybroker.cli.replay import _deadline_grid

    grid = _deadline_grid(48, 0.2, 60, 1 / 6)
    assert grid[0] == pytest.approx(48 + 2 / 6)  # ceil((C0 + d) / g) ticks
    assert 60 in grid and grid == sorted(grid) and len(grid) >= 8
