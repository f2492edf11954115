"""OfferTable / Offer: columnar semantics, masks, take, concat, NaN = not offered."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skybroker.catalog import (
    KNOWN_ACCELERATORS,
    Offer,
    OfferTable,
    accelerator_suggestions,
    canonical_accelerator,
    parse_accelerator_spec,
)
from skybroker.catalog.summary import accelerator_overview, cheapest_per_group, instance_offers
from skybroker.errors import SkyError


def _rec(cloud="aws", region="us-east-1", zone="us-east-1a", itype="p3.2xlarge", vcpus=8,
         mem=61, acc="V100", count=1, accmem=16, arch="x86_64", price=3.06, spot=0.9):
    return dict(cloud=cloud, region=region, zone=zone, instance_type=itype, vcpus=vcpus,
                memory_gib=mem, accelerator_name=acc, accelerator_count=count,
                accelerator_memory_gib=accmem, arch=arch, price=price, spot_price=spot)


@pytest.fixture
def table() -> OfferTable:
    return OfferTable.from_records([
        _rec(),
        _rec(zone="us-east-1b", spot=None),
        _rec(itype="p3.8xlarge", vcpus=32, mem=244, count=4, price=12.24, spot=3.6),
        _rec(cloud="gcp", region="us-central1", zone="us-central1-a", itype="n1-standard-8",
             vcpus=8, mem=30, acc="T4", count=1, price=0.73, spot=0.3),
        _rec(cloud="gcp", region="us-central1", zone="us-central1-a", itype="n1-standard-8",
             vcpus=8, mem=30, acc=None, count=None, accmem=None, price=0.38, spot=0.14),
        _rec(cloud="azure", region="eastus", zone=None, itype="Standard_D4ps_v5", vcpus=4,
             mem=16, acc=None, count=None, accmem=None, arch="arm64", price=0.154, spot=0.03),
        _rec(itype="p5e.48xlarge", vcpus=192, mem=2048, acc="H200", count=8, price=None, spot=14.9),
    ])


def test_len_columns_and_dtypes(table):
    assert len(table) == 7
    assert table.price.dtype == np.float64 and table.region.dtype.kind == "U"
    assert math.isnan(table.spot_price[1]) and math.isnan(table.price[6])
    assert table["cloud"].tolist()[:3] == ["aws", "aws", "aws"]
    assert table.zone[5] == ""  # absent strings are "" in arrays
    with pytest.raises(AttributeError):
        table.nope  # noqa: B018


def test_offer_row_uses_none_for_absent(table):
    o = table.offer(5)
    assert isinstance(o, Offer)
    assert o.zone is None and o.accelerator_name is None and o.accelerators == {}
    assert o.arch == "arm64" and o.price == pytest.approx(0.154)
    p5e = table.offer(6)
    assert p5e.price is None and p5e.spot_price == pytest.approx(14.9)
    assert p5e.accelerators == {"H200": 8.0} and p5e.hourly_price(spot=True) == pytest.approx(14.9)


def test_mask_criteria(table):
    assert table.mask(accelerator="V100").sum() == 3
    assert table.mask(accelerator="V100", min_accelerator_count=4).sum() == 1
    assert table.mask(accelerator="").sum() == 2  # "" = no accelerator
    assert table.mask(cloud=["gcp", "azure"]).sum() == 3
    assert table.mask(min_vcpus=8, min_memory_gib=61).sum() == 4
    assert table.mask(spot=True).sum() == 6 and table.mask(on_demand=False).sum() == 1
    assert table.mask(region="nowhere").sum() == 0
    assert table.mask(arch="arm64").tolist() == [False] * 5 + [True, False]
    assert len(table.select(instance_type="p3.2xlarge", zone="us-east-1b")) == 1


def test_take_slice_mask_and_order(table):
    sub = table.take([3, 0])
    assert sub.instance_type.tolist() == ["n1-standard-8", "p3.2xlarge"]
    assert len(table[table.price < 1]) == 3
    assert len(table[1:3]) == 2
    assert table[3] == table.offer(3) and table[-1].instance_type == "p5e.48xlarge"
    cheapest = table.sort_by_price()
    assert cheapest.price[0] == pytest.approx(0.154) and math.isnan(cheapest.price[-1])
    assert table.sort_by_price(spot=True).spot_price[0] == pytest.approx(0.03)


def test_concat_merges_vocabularies(table):
    a, b = table[:3], table[3:]
    both = OfferTable.concat([a, b])
    for col in ("cloud", "region", "zone", "instance_type", "accelerator_name", "price"):
        np.testing.assert_array_equal(both[col], table[col])
    assert OfferTable.concat([]).__len__() == 0
    assert OfferTable.concat([a]) is a
    assert both.unique("cloud") == ["aws", "azure", "gcp"]
    assert both.accelerator_names() == ["H200", "T4", "V100"]


def test_records_round_trip(table):
    again = OfferTable.from_records(table.to_records())
    assert again.to_records() == table.to_records()
    assert len(OfferTable.from_records([])) == 0


def test_bad_columns_rejected():
    with pytest.raises(ValueError, match="missing"):
        OfferTable({"price": np.zeros(1)})


def test_summaries(table):
    best = cheapest_per_group(table, ("cloud",))
    assert [table.cloud[i] for i in best] == ["azure", "gcp", "aws"]
    rows = instance_offers(table.select(accelerator="V100"))
    assert [r["instance_type"] for r in rows] == ["p3.2xlarge", "p3.8xlarge"]
    assert rows[0]["spot_where"] == "us-east-1/us-east-1a" and rows[0]["on_demand"] == 3.06
    ov = {r["accelerator"]: r for r in accelerator_overview(table)}
    assert ov["V100"]["counts"] == [1.0, 4.0]
    assert ov["V100"]["spot"]["price_per_device"] == pytest.approx(0.9)
    assert ov["H200"]["on_demand"] is None


@pytest.mark.parametrize("given,canon", [
    ("a100", "A100"), ("A100-80gb", "A100-80GB"), ("a100-80g", "A100-80GB"), ("h100", "H100"),
    ("l40s", "L40S"), ("T4", "T4"), ("inf2", "Inferentia2"), ("rtx-pro-6000", "RTXPRO6000"),
])
def test_canonical_accelerator(given, canon):
    assert canonical_accelerator(given) == canon


def test_canonical_unknown_and_extra():
    assert canonical_accelerator("A1000") is None
    assert canonical_accelerator("mygpu", extra=["MyGPU"]) == "MyGPU"
    assert "A100" in accelerator_suggestions("A1000")
    assert "H100" in KNOWN_ACCELERATORS


def test_parse_accelerator_spec():
    assert parse_accelerator_spec("A100:8") == ("A100", 8.0)
    assert parse_accelerator_spec("a100") == ("a100", None)
    assert parse_accelerator_spec("K80:0.5") == ("K80", 0.5)
    with pytest.raises(SkyError):
        parse_accelerator_spec("A100:x")
    with pytest.raises(SkyError):
        parse_accelerator_spec("A100:0")
