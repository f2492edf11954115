"""`sky show-gpus` through click's CliRunner, on the shipped catalogs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from skybroker.cli.show_gpus import show_gpus


@pytest.fixture(autouse=True)
def _shipped(monkeypatch):
    monkeypatch.delenv("SKYBROKER_CATALOG_DIR", raising=False)


def run(*args: str):
    return CliRunner().invoke(show_gpus, list(args), catch_exceptions=False)


def test_overview_lists_common_gpus_and_price_age():
    r = run()
    assert r.exit_code == 0, r.output
    for name in ("H100", "A100-80GB", "T4", "L4", "V100"):
        assert name in r.output
    assert "days old" in r.output and "--all" in r.output


def test_all_lists_rare_accelerators():
    r = run("--all")
    assert r.exit_code == 0
    assert "Inferentia2" in r.output and "MI300X" in r.output


def test_named_gpu_table_cheapest_first_json():
    r = run("a100-80gb:8", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert rows and {x["accelerator"] for x in rows} == {"A100-80GB"}
    assert {x["count"] for x in rows} == {8.0}
    prices = [x["on_demand"] for x in rows if x["on_demand"] is not None]
    assert prices == sorted(prices)
    assert {"p4de.24xlarge", "a2-ultragpu-8g", "Standard_ND96amsr_A100_v4"} <= {x["instance_type"] for x in rows}


def test_named_gpu_rich_table_with_cloud_and_region():
    r = run("V100", "--cloud", "AWS", "--region", "us-east-1")
    assert r.exit_code == 0, r.output
    assert "p3.2xlarge" in r.output and "3.060" in r.output and "us-east-1" in r.output
    assert "gcp" not in r.output.split("aws: prices")[0]


def test_per_region_rows_with_all():
    rows = json.loads(run("V100:1", "--cloud", "aws", "--all", "--json").output)
    regions = {x["on_demand_where"].split("/")[0] for x in rows if x["on_demand_where"]}
    assert len(regions) > 3


def test_unknown_gpu_did_you_mean():
    r = CliRunner().invoke(show_gpus, ["A1000"])
    assert r.exit_code == 1
    assert "Unknown accelerator 'A1000'" in r.output and "A100" in r.output


def test_unknown_count_cloud_region():
    r = CliRunner().invoke(show_gpus, ["H100:3"])
    assert r.exit_code == 1 and "Counts on offer: 1, 2, 4, 8" in r.output
    r = CliRunner().invoke(show_gpus, ["--cloud", "awz"])
    assert r.exit_code == 1 and "Did you mean 'aws'" in r.output
    r = CliRunner().invoke(show_gpus, ["--region", "us-eest-1"])
    assert r.exit_code == 1 and "Did you mean" in r.output
    r = CliRunner().invoke(show_gpus, ["MI300X", "--cloud", "aws"])
    assert r.exit_code == 1 and "No offers of accelerator 'MI300X' in aws" in r.output


def test_bad_count():
    r = CliRunner().invoke(show_gpus, ["A100:x"])
    assert r.exit_code == 2 and "NAME[:COUNT]" in r.output


def test_overview_json_prices_are_the_catalog_minimum():
    import numpy as np

    from skybroker.catalog import load_catalogs

    rows = {r["accelerator"]: r for r in json.loads(run("--json").output)}
    t = load_catalogs()
    for name in ("T4", "A100", "H100"):
        sub = t.select(accelerator=name)
        per_dev = sub.price / sub.accelerator_count
        assert rows[name]["on_demand"]["price_per_device"] == pytest.approx(np.nanmin(per_dev))
        spot = sub.spot_price / sub.accelerator_count
        assert rows[name]["spot"]["price_per_device"] == pytest.approx(np.nanmin(spot))
        assert rows[name]["counts"] == sorted(set(sub.accelerator_count.tolist()))
