"""Catalog lookup order, compiled cache and its invalidation, provenance/age."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pytest

from skybroker.catalog import store
from skybroker.catalog.store import (
    aws_zone_ids,
    catalog_info,
    catalog_path,
    load_catalog,
    load_catalogs,
    parse_csv,
)
from skybroker.errors import CatalogError

REPO = Path(__file__).resolve().parent.parent
HEADER = "instance_type,vcpus,memory_gib,accelerator_name,accelerator_count,accelerator_memory_gib,arch,region,zone,price,spot_price\n"


@pytest.fixture(autouse=True)
def _fresh_memo():
    store._MEMO.clear()
    yield
    store._MEMO.clear()


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> Path:
    """A private shipped-catalog dir (via SKYBROKER_CATALOG_DIR) with a tiny aws.csv."""
    d = tmp_path / "shipped"
    d.mkdir()
    (d / "aws.csv").write_text(HEADER + "p3.2xlarge,8,61,V100,1,16,x86_64,us-east-1,us-east-1a,3.06,0.9\n"
                               "m6i.large,2,8,,,,x86_64,us-east-1,us-east-1b,0.096,\n")
    (d / "gcp.csv").write_text(HEADER + "n1-standard-8,8,30,T4,1,16,x86_64,us-central1,us-central1-a,0.73,0.3\n")
    (d / "SOURCES.json").write_text(json.dumps({"aws": {"source": "fixture", "date": "2026-01-21"}}))
    monkeypatch.setenv("SKYBROKER_CATALOG_DIR", str(d))
    return d


def _cache_files(home: Path) -> list[Path]:
    return sorted((home / "cache" / "catalog").glob("*.npy"))


def test_parse_and_cache_round_trip(shipped, sky_home):
    t = load_catalog("aws")
    assert len(t) == 2 and t.cloud.tolist() == ["aws", "aws"]
    assert not t.price.flags.writeable  # shared via the memo, parsed or mapped
    assert np.isnan(t.spot_price[1]) and t.accelerator_name[1] == ""
    files = _cache_files(sky_home)
    assert len(files) == 1 and files[0].name.startswith("aws-")
    store._MEMO.clear()
    again = load_catalog("aws")  # now from the compiled file (memory-mapped, read-only)
    assert again.to_records() == t.to_records()
    assert not again.price.flags.writeable
    with pytest.raises(ValueError):
        again.price[0] = 0.0


def test_cache_invalidated_when_csv_changes(shipped, sky_home):
    assert load_catalog("aws").price[0] == pytest.approx(3.06)
    csv_path = shipped / "aws.csv"
    csv_path.write_text(csv_path.read_text().replace("3.06", "2.50"))
    os.utime(csv_path, ns=(1, 1))  # a different mtime (and size would differ anyway)
    store._MEMO.clear()
    assert load_catalog("aws").price[0] == pytest.approx(2.50)
    assert len(_cache_files(sky_home)) == 1  # the stale compiled file was removed


def test_corrupt_cache_is_reparsed(shipped, sky_home):
    load_catalog("aws")
    (cache,) = _cache_files(sky_home)
    good = cache.read_bytes()
    for bad in (b"garbage", good[: len(good) // 2], good[: len(good) - 40]):
        cache.write_bytes(bad)
        store._MEMO.clear()
        assert load_catalog("aws").price.tolist() == [3.06, 0.096]


def test_user_catalog_takes_precedence(shipped, sky_home):
    user = sky_home / "catalogs"
    user.mkdir()
    (user / "aws.csv").write_text(HEADER + "p3.2xlarge,8,61,V100,1,16,x86_64,us-east-1,us-east-1a,2.00,0.5\n")
    (user / "SOURCES.json").write_text(json.dumps(
        {"aws": {"source": "AWS Price List API", "refreshed_at": "2026-11-20T10:00:00Z"}}))
    assert catalog_path("aws") == user / "aws.csv"
    assert load_catalog("aws").price.tolist() == [2.0]
    info = catalog_info("aws", today=dt.date(2026, 11, 22))
    assert info.source == "AWS Price List API" and info.date == dt.date(2026, 11, 20)
    assert info.age_days == 2
    path, source, date, age = info  # unpacks as (path, source, date, age)
    assert path == user / "aws.csv" and age == dt.timedelta(days=2)


def test_catalog_info_shipped_and_without_sources(shipped):
    info = catalog_info("aws", today=dt.date(2026, 2, 1))
    assert (info.source, info.date, info.age_days) == ("fixture", dt.date(2026, 1, 21), 11)
    assert "fixture" in info.describe() and "11 days old" in info.describe()
    gcp = catalog_info("gcp")  # no SOURCES entry: file mtime is the date
    assert gcp.date is not None and gcp.source.endswith("gcp.csv")


def test_missing_catalog_errors_and_missing_ok(shipped):
    with pytest.raises(CatalogError, match="No catalog for cloud 'azure'"):
        load_catalog("azure")
    both = load_catalogs(["aws", "azure", "gcp"], missing_ok=True)
    assert both.unique("cloud") == ["aws", "gcp"]
    with pytest.raises(CatalogError):
        load_catalogs(["aws", "azure"])


def test_load_catalogs_multi_cache(shipped, sky_home):
    t = load_catalogs(["aws", "gcp"])
    assert t.cloud.tolist() == ["aws", "aws", "gcp"]
    names = [p.name for p in _cache_files(sky_home)]
    assert any(n.startswith("multi-aws+gcp-") for n in names)
    store._MEMO.clear()
    again = load_catalogs(["aws", "gcp"])
    assert again.to_records() == t.to_records()


def test_lenient_user_csv(tmp_path):
    p = tmp_path / "local.csv"
    # columns in another order, no arch/zone columns, an extra column, a short row
    p.write_text("region,instance_type,price,extra,vcpus\nlocal,cpu-4,0,x,4\nlocal,cpu-8,0\n")
    t = parse_csv(p, "local")
    assert t.instance_type.tolist() == ["cpu-4", "cpu-8"]
    assert t.arch.tolist() == ["x86_64", "x86_64"] and np.isnan(t.vcpus[1])
    bad = tmp_path / "bad.csv"
    bad.write_text("instance_type,region,price\na,b,notanumber\n")
    with pytest.raises(CatalogError, match="price"):
        parse_csv(bad, "x")
    with pytest.raises(CatalogError, match="missing column"):
        (tmp_path / "nohdr.csv").write_text("foo,bar\n1,2\n")
        parse_csv(tmp_path / "nohdr.csv", "x")


def test_quoted_csv_uses_csv_module(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('instance_type,region,price\n"a,b",r,1.5\n')
    assert parse_csv(p, "x").instance_type.tolist() == ["a,b"]


def test_shipped_catalogs_load(monkeypatch):
    monkeypatch.delenv("SKYBROKER_CATALOG_DIR", raising=False)
    t = load_catalogs(["aws", "gcp", "azure"])
    assert len(t) > 80_000 and t.unique("cloud") == ["aws", "azure", "gcp"]
    m = t.mask(accelerator="A100", min_accelerator_count=8, spot=True)
    assert m.any() and set(t.cloud[m].tolist()) <= {"aws", "gcp", "azure"}
    assert aws_zone_ids()["us-east-1a"] == "use1-az6"
    # every shipped accelerator name is canonical and known (did-you-mean relies on it)
    from skybroker.catalog import KNOWN_ACCELERATORS, canonical_accelerator

    for name in t.accelerator_names():
        assert name in KNOWN_ACCELERATORS and canonical_accelerator(name.lower()) == name
