"""The refreshed catalog is installed atomically, validated, and its provenance recorded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROW = {"instance_type": "m6i.large", "vcpus": 2.0, "memory_gib": 8.0, "accelerator_name": "",
       "accelerator_count": None, "accelerator_memory_gib": None, "arch": "x86_64",
       "region": "us-east-1", "zone": "us-east-1a", "price": 0.096, "spot_price": 0.0358}


def test_install_writes_schema_and_keeps_other_clouds_provenance(tmp_path):
    from skybroker.catalog.refresh.writer import install
    from skybroker.catalog.store import parse_csv

    (tmp_path / "SOURCES.json").write_text(json.dumps({"gcp": {"source": "x", "date": "2026-01-01"}}))
    path = install("aws", [ROW, {**ROW, "zone": "us-east-1b", "spot_price": None}], "src",
                   {"n": 1}, tmp_path)
    assert path.read_text().splitlines() == [
        "instance_type,vcpus,memory_gib,accelerator_name,accelerator_count,"
        "accelerator_memory_gib,arch,region,zone,price,spot_price",
        "m6i.large,2,8,,,,x86_64,us-east-1,us-east-1a,0.096,0.0358",
        "m6i.large,2,8,,,,x86_64,us-east-1,us-east-1b,0.096,",
    ]
    assert len(parse_csv(path, "aws")) == 2
    meta = json.loads((tmp_path / "SOURCES.json").read_text())
    assert meta["gcp"] == {"source": "x", "date": "2026-01-01"}
    assert meta["aws"]["source"] == "src" and meta["aws"]["rows"] == 2
    assert meta["aws"]["refreshed_at"].startswith(meta["aws"]["date"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".refresh.lock", "SOURCES.json", "aws.csv"]


def test_crash_before_rename_leaves_old_catalog_and_no_temp(tmp_path, monkeypatch):
    from skybroker.catalog.refresh import writer

    old = tmp_path / "aws.csv"
    old.write_text("old catalog\n")

    def boom(src, dst):
        assert Path(src).read_text().startswith("instance_type,")  # fully written first
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        writer.install("aws", [ROW], "src", {}, tmp_path)
    assert old.read_text() == "old catalog\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".refresh.lock", "aws.csv"]


@pytest.mark.parametrize("rows, message", [
    ([], "produced no offers"),
    ([{**ROW, "price": None, "spot_price": float("nan")}], "no offer has a price"),
    ([{**ROW, "region": ""}], "lacks region"),
])
def test_refuses_output_worse_than_the_old_catalog(tmp_path, rows, message):
    from skybroker.catalog.refresh.writer import install
    from skybroker.errors import CatalogError

    with pytest.raises(CatalogError, match=message):
        install("aws", rows, "src", {}, tmp_path)
    assert not any(tmp_path.iterdir())  # validation happens before anything is touched


def test_merge_partial_replaces_only_the_refreshed_slice(tmp_path):
    from skybroker.catalog.refresh.writer import merge_partial, write_catalog

    old = tmp_path / "old.csv"
    write_catalog([ROW, {**ROW, "region": "us-west-2", "zone": "us-west-2a"},
                   {**ROW, "instance_type": "g5.xlarge"}], old)
    fresh = [{**ROW, "price": 0.1}]
    rows, kept = merge_partial(old, fresh, ["us-east-1"], ["m6i.*"])
    assert kept == 2
    assert sorted((r["instance_type"], r["region"], float(r["price"])) for r in rows) == [
        ("g5.xlarge", "us-east-1", 0.096), ("m6i.large", "us-east-1", 0.1),
        ("m6i.large", "us-west-2", 0.096)]
    assert merge_partial(old, fresh, None, None) == (fresh, 0)  # a full refresh replaces all


def test_retries_throttling_with_backoff_then_gives_up():
    from skybroker.catalog.refresh.common import Throttled, with_retries

    calls, waits = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise Throttled("429")
        return "ok"

    assert with_retries(flaky, what="x", base=0.5, sleep=waits.append) == "ok"
    assert len(waits) == 2 and waits[1] > waits[0] * 0.6  # exponential, jittered
    with pytest.raises(Throttled):
        with_retries(lambda: (_ for _ in ()).throw(Throttled("429")), what="x", attempts=3,
                     sleep=waits.append)
    with pytest.raises(ValueError):  # not throttling: no retry
        with_retries(lambda: int("x"), what="x", sleep=lambda s: pytest.fail("slept"))


def test_concurrent_installs_keep_every_clouds_provenance(tmp_path):
    import threading

    from skybroker.catalog.refresh.writer import install

    clouds = ["aws", "gcp", "azure", "c4", "c5", "c6"]
    threads = [threading.Thread(target=install, args=(c, [ROW], f"src-{c}", {}, tmp_path))
               for c in clouds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meta = json.loads((tmp_path / "SOURCES.json").read_text())
    assert sorted(meta) == sorted(clouds)
