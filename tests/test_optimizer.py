"""The optimizer against the shipped (real-price) catalogs and small hand-made tables."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from skybroker.catalog import OfferTable, load_catalogs
from skybroker.cli import cli
from skybroker.errors import ResourcesUnavailableError, SkyError
from skybroker.optimizer import optimize, optimize_dag
from skybroker.optimizer.dag import egress_per_gb
from skybroker.task import Task

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def table() -> OfferTable:
    return load_catalogs(["aws", "gcp", "azure"])


def task_of(yaml_text: str, tmp_path: Path) -> Task:
    p = tmp_path / "task.yaml"
    p.write_text(yaml_text)
    return Task.from_yaml(str(p))


def csv_rows(cloud: str):
    with open(REPO / "catalogs" / f"{cloud}.csv") as fh:
        yield from csv.DictReader(fh)


def test_a100x8_on_demand_matches_an_independent_scan(table, tmp_path):
    task = task_of("resources:\n  accelerators: A100:8\n", tmp_path)
    plan = optimize(task, table=table)
    # Independent reference: scan the CSVs with the csv module.
    ref = [(float(r["price"]), c, r["instance_type"]) for c in ("aws", "gcp", "azure")
           for r in csv_rows(c)
           if r["accelerator_name"] == "A100" and r["accelerator_count"]
           and float(r["accelerator_count"]) == 8 and r["price"]]
    assert len(plan) == len(ref)
    assert plan.best.hourly_cost == pytest.approx(min(ref)[0])
    costs = plan.hourly_cost
    assert np.all(np.diff(costs) >= 0), "plan must be ranked cheapest first"
    assert not plan.spot.any()
    for p in plan.placements[:20]:
        assert p.offer.accelerator_name == "A100" and p.offer.accelerator_count == 8


def test_any_of_spot_and_on_demand_plans_both(table, tmp_path):
    task = task_of("resources:\n  accelerators: V100:1\n  any_of:\n"
                   "    - use_spot: true\n    - use_spot: false\n", tmp_path)
    plan = optimize(task, table=table)
    assert plan.spot.any() and (~plan.spot).any()
    assert plan.best.spot  # spot is cheaper than on-demand for V100
    spot_prices = plan.table.spot_price[plan.spot]
    assert not np.isnan(spot_prices).any()


def test_use_spot_absent_means_on_demand_only(table, tmp_path):
    plan = optimize(task_of("resources:\n  accelerators: T4:1\n", tmp_path), table=table)
    assert not plan.spot.any()


def test_ordered_keeps_the_users_preference_over_price(table, tmp_path):
    task = task_of("resources:\n  ordered:\n    - accelerators: H100:8\n"
                   "    - accelerators: A100:8\n", tmp_path)
    plan = optimize(task, table=table)
    alt = plan.alt
    first_a100 = int(np.argmax(alt == 1))
    assert (alt[:first_a100] == 0).all() and (alt[first_a100:] == 1).all()
    assert plan.best.offer.accelerator_name == "H100"
    # Unordered: the cheaper A100 comes first.
    task2 = task_of("resources:\n  accelerators: {H100: 8, A100: 8}\n", tmp_path)
    assert optimize(task2, table=table).best.offer.accelerator_name == "A100"


def test_pins_and_did_you_mean(table, tmp_path):
    plan = optimize(task_of("resources:\n  infra: aws/us-east-1\n  instance_type: p3.2xlarge\n",
                            tmp_path), table=table)
    assert {p.region for p in plan.placements} == {"us-east-1"}
    assert plan.best.hourly_cost == pytest.approx(3.06)
    with pytest.raises(SkyError, match="Did you mean 'us-east-1'"):
        optimize(task_of("resources:\n  cloud: aws\n  region: us-east1\n", tmp_path), table=table)
    with pytest.raises(SkyError, match="Did you mean 'p3.2xlarge'"):
        optimize(task_of("resources:\n  instance_type: p3.2xlarg\n", tmp_path), table=table)
    with pytest.raises(ResourcesUnavailableError, match="Did you mean 'H100'"):
        optimize(task_of("resources:\n  accelerators: H10O:8\n", tmp_path), table=table)


def test_cpus_at_least_vs_exact_and_memory(table, tmp_path):
    exact = optimize(task_of("resources:\n  cpus: 8\n  memory: 32\n", tmp_path), table=table)
    assert set(exact.table.vcpus.tolist()) == {8.0}
    assert set(exact.table.memory_gib.tolist()) == {32.0}
    at_least = optimize(task_of("resources:\n  cpus: 8+\n  memory: 32+\n", tmp_path), table=table)
    assert (at_least.table.vcpus >= 8).all() and (at_least.table.memory_gib >= 32).all()
    assert len(at_least) > len(exact)
    assert at_least.best.hourly_cost <= exact.best.hourly_cost
    # No accelerators asked for: no accelerator VMs in the plan.
    assert (np.nan_to_num(at_least.table.accelerator_count) == 0).all()


def test_num_nodes_multiplies_cost_and_blocklist_removes_rows(table, tmp_path):
    one = optimize(task_of("resources:\n  accelerators: A100:8\n", tmp_path), table=table)
    two = optimize(task_of("num_nodes: 2\nresources:\n  accelerators: A100:8\n", tmp_path),
                   table=table)
    assert two.best.hourly_cost == pytest.approx(2 * one.best.hourly_cost)
    b = one.best
    blocked = optimize(task_of("resources:\n  accelerators: A100:8\n", tmp_path), table=table,
                       blocked=[(b.cloud, b.region, b.zone, None, None)])
    assert len(blocked) < len(one)
    assert all((p.cloud, p.region, p.zone) != (b.cloud, b.region, b.zone)
               for p in blocked.placements)
    assert any("blocked" in r for r in blocked.why_not())


def test_fractional_count_uses_one_whole_device(table, tmp_path):
    plan = optimize(task_of("resources:\n  accelerators: K80:0.5\n", tmp_path), table=table)
    assert set(plan.table.accelerator_count.tolist()) == {1.0}


def test_image_id_per_region_restricts_regions(table, tmp_path):
    plan = optimize(task_of("resources:\n  cloud: aws\n  accelerators: T4:1\n  image_id:\n"
                            "    us-west-2: ami-1\n    eu-west-1: ami-2\n", tmp_path), table=table)
    assert set(plan.table.region.tolist()) <= {"us-west-2", "eu-west-1"}


def test_infeasible_explains_why(table, tmp_path):
    with pytest.raises(ResourcesUnavailableError) as e:
        optimize(task_of("resources:\n  cloud: aws\n  accelerators: A100:3\n", tmp_path),
                 table=table)
    assert "not exactly 3x A100" in str(e.value)


# ---------------------------------------------------------------- pipelines (DAG placement)

def _toy_table() -> OfferTable:
    """Three regions on two clouds with prices chosen so that egress changes the answer."""
    recs = []
    for cloud, region, price in (("aws", "us-east-1", 1.0), ("aws", "us-west-2", 1.3),
                                 ("gcp", "us-central1", 0.5)):
        recs.append(dict(cloud=cloud, region=region, zone=f"{region}a", instance_type=f"{cloud}-4",
                         vcpus=4.0, memory_gib=16.0, accelerator_name=None, accelerator_count=None,
                         accelerator_memory_gib=None, arch="x86_64", price=price, spot_price=None))
    return OfferTable.from_records(recs)


def _cpu_task(outputs_gb: float = 0.0, hours: float = 1.0) -> Task:
    t = Task.from_yaml_config({"resources": {"cpus": 4, "job_recovery": {"duration": f"{hours}h"}}})
    if outputs_gb:
        t.outputs = {"out": outputs_gb}
    return t


def _brute(tasks, edges, table):
    from skybroker.optimizer.dag import _input_sources, task_hours  # noqa: F401

    options = [[(p.cloud, p.region, p.hourly_cost) for p in optimize(t, table=table).placements]
               for t in tasks]
    best = math.inf
    for combo in itertools.product(*options):
        cost = sum(c[2] * task_hours(t) for c, t in zip(combo, tasks))
        for a, b in edges:
            gb = sum((tasks[a].outputs or {}).values())
            cost += gb * egress_per_gb(combo[a][:2], combo[b][:2])
        best = min(best, cost)
    return best


def test_chain_moves_to_the_data_when_egress_dominates():
    table = _toy_table()
    cheap = optimize_dag([_cpu_task(), _cpu_task()], table=table)
    assert {p.cloud for p in cheap.chosen} == {"gcp"}
    # 100 GB out of aws costs $9 to move: the second task stays with the first one's data
    # only if its first task is pinned to aws.
    first = Task.from_yaml_config({"resources": {"cloud": "aws", "cpus": 4}})
    first.outputs = {"s3://bucket/ckpt": 100}
    dag = optimize_dag([first, _cpu_task()], table=table)
    assert dag.chosen[0].cloud == "aws" and dag.chosen[1].cloud == "aws"
    assert dag.egress_cost == 0
    assert dag.total_cost == pytest.approx(_brute([first, _cpu_task()], [(0, 1)], table))


@pytest.mark.parametrize("edges", [[(0, 1), (0, 2), (2, 3)], [(0, 1), (0, 2), (1, 3), (2, 3)]])
def test_tree_and_general_dag_are_exact(edges):
    table = _toy_table()
    rng = np.random.default_rng(7)
    for _ in range(3):
        tasks = []
        for i in range(4):
            pin = {"cloud": ["aws", "gcp", None][int(rng.integers(3))]} if i == 0 else {}
            t = Task.from_yaml_config({"resources": {"cpus": 4, **pin,
                                                     "job_recovery": {"duration": f"{rng.integers(1, 5)}h"}}})
            t.outputs = {"data": float(rng.integers(0, 80))}
            tasks.append(t)
        dag = optimize_dag(tasks, edges=edges, table=table)
        assert dag.total_cost == pytest.approx(_brute(tasks, edges, table))


def test_cycle_is_rejected():
    with pytest.raises(SkyError, match="cycle"):
        optimize_dag([_cpu_task(), _cpu_task()], edges=[(0, 1), (1, 0)], table=_toy_table())


# ---------------------------------------------------------------- CLI

def test_cli_dryrun_json_is_the_ranked_plan(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("name: ft\nresources:\n  accelerators: A100:8\n  use_spot: true\n")
    res = CliRunner().invoke(cli, ["launch", "--dryrun", "--json", "--cloud", "aws", str(p)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    pl = data["placements"]
    assert pl and all(x["cloud"] == "aws" and x["spot"] for x in pl)
    assert [x["hourly_cost"] for x in pl] == sorted(x["hourly_cost"] for x in pl)
    assert set(pl[0]) >= {"cloud", "region", "zone", "instance_type", "spot", "num_nodes",
                          "hourly_cost"}


def test_cli_dryrun_table_and_overrides(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("resources:\n  accelerators: T4:1\n")
    res = CliRunner().invoke(cli, ["launch", "--dryrun", "--gpus", "V100:1", "--use-spot", str(p)])
    assert res.exit_code == 0, res.output
    assert "V100:1" in res.output and "Chosen:" in res.output and "T4" not in res.output


def test_pipeline_dryrun(tmp_path):
    p = tmp_path / "pipe.yaml"
    p.write_text("name: pipe\n---\nname: train\nresources:\n  accelerators: A100:8\n"
                 "outputs:\n  s3://b/ckpt: 50\n---\nname: eval\nresources:\n  accelerators: T4:1\n")
    res = CliRunner().invoke(cli, ["launch", "--dryrun", "--json", str(p)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [t["name"] for t in data["tasks"]] == ["train", "eval"]
    assert data["egress_cost"] >= 0


def test_cli_gpus_none_drops_accelerators(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("resources:\n  accelerators: A100:8\n")
    res = CliRunner().invoke(cli, ["launch", "--dryrun", "--json", "--gpus", "none",
                                   "--cloud", "aws", str(p)])
    assert res.exit_code == 0, res.output
    assert all(x["accelerators"] is None for x in json.loads(res.output)["placements"])
    bad = tmp_path / "bad.yaml"
    bad.write_text('resources:\n  accelerators: ""\n')
    res = CliRunner().invoke(cli, ["launch", "--dryrun", str(bad)])
    assert res.exit_code != 0 and "accelerators" in str(res.exception or res.output)
