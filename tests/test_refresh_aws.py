"""`sky catalog refresh aws`: EC2 plumbing over HTTP against moto, price logic on real data.

moto serves describe_instance_types / offerings / spot history (its spot prices are fake),
but not the Price List API: the pricing client's answers are injected with botocore's
Stubber, in the real GetProducts shape (PriceList = JSON strings), with real prices.
"""

from __future__ import annotations

import csv
import json
import math

import pytest
from stubs.aws_env import isolate_aws_env
from stubs.aws_fixtures import moto_server  # noqa: F401

# Real on-demand prices (us-east-1, Linux, shared) as in the shipped catalogs/aws.csv.
TYPES = ["g4dn.*", "m6i.*", "g5.xlarge", "c5.large"]
KNOWN = {"p3.2xlarge": 3.06, "g4dn.xlarge": 0.526, "g5.xlarge": 1.006, "m6i.large": 0.096}


def product(itype: str, usd: float, region: str = "us-east-1", unit: str = "Hrs") -> str:
    """One Price List document as GetProducts returns it (a JSON string)."""
    sku = f"SKU{abs(hash((itype, region))) % 10**8:08d}"
    doc = {
        "product": {"productFamily": "Compute Instance", "sku": sku,
                    "attributes": {"instanceType": itype, "regionCode": region,
                                   "operatingSystem": "Linux", "tenancy": "Shared",
                                   "preInstalledSw": "NA", "capacitystatus": "Used"}},
        "serviceCode": "AmazonEC2",
        "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {
            "offerTermCode": "JRTCKXETXF", "sku": sku,
            "effectiveDate": "2026-11-01T00:00:00Z",
            "priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                "unit": unit, "endRange": "Inf", "beginRange": "0",
                "description": f"${usd} per On Demand Linux {itype} Instance Hour",
                "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7",
                "pricePerUnit": {"USD": f"{usd:.10f}"}, "appliesTo": []}},
            "termAttributes": {}}}},
        "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z",
    }
    return json.dumps(doc)


def test_price_list_document_parsing():
    from skybroker.catalog.refresh.aws import on_demand_price

    assert on_demand_price(product("p3.2xlarge", 3.06)) == ("p3.2xlarge", 3.06)
    assert on_demand_price(product("p3.2xlarge", 0.0)) is None  # reserved-style $0 lines
    assert on_demand_price(product("p3.2xlarge", 1.0, unit="Quantity")) is None


def test_build_rows_keeps_zone_level_spot_prices():
    """Injected data for p3.2xlarge (moto does not know it): the shipped catalog's values."""
    from skybroker.catalog.refresh.aws import build_rows, latest_spot, shape_of

    info = {"InstanceType": "p3.2xlarge", "VCpuInfo": {"DefaultVCpus": 8},
            "MemoryInfo": {"SizeInMiB": 62464},
            "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
            "GpuInfo": {"Gpus": [{"Name": "V100", "Manufacturer": "NVIDIA", "Count": 1,
                                  "MemoryInfo": {"SizeInMiB": 16384}}]}}
    history = [
        {"AvailabilityZone": "us-east-1a", "InstanceType": "p3.2xlarge", "SpotPrice": "0.9",
         "Timestamp": "2026-11-21T00:00:00Z"},
        {"AvailabilityZone": "us-east-1a", "InstanceType": "p3.2xlarge", "SpotPrice": "0.6827",
         "Timestamp": "2026-11-22T00:00:00Z"},
        {"AvailabilityZone": "us-east-1b", "InstanceType": "p3.2xlarge", "SpotPrice": "0.5197",
         "Timestamp": "2026-11-22T00:00:00Z"},
    ]
    rows = build_rows("us-east-1", {"p3.2xlarge": shape_of(info)},
                      {"p3.2xlarge": ["us-east-1b", "us-east-1a", "us-east-1d"]},
                      {"p3.2xlarge": 3.06}, latest_spot(history))
    by_zone = {r["zone"]: r for r in rows}
    assert set(by_zone) == {"us-east-1a", "us-east-1b", "us-east-1d"}
    assert by_zone["us-east-1a"]["spot_price"] == 0.6827  # latest, not the older 0.9
    assert by_zone["us-east-1b"]["spot_price"] == 0.5197  # not collapsed to a region minimum
    assert by_zone["us-east-1d"]["spot_price"] is None
    r = by_zone["us-east-1a"]
    assert (r["price"], r["vcpus"], r["memory_gib"], r["accelerator_name"],
            r["accelerator_count"], r["accelerator_memory_gib"]) == (3.06, 8, 61, "V100", 1, 16)
    # Same values as the shipped catalog.
    from conftest import REPO
    with open(REPO / "catalogs" / "aws.csv") as fh:
        shipped = {(x["zone"]): x for x in csv.DictReader(fh)
                   if x["instance_type"] == "p3.2xlarge" and x["region"] == "us-east-1"}
    for zone in ("us-east-1a", "us-east-1b"):
        assert float(shipped[zone]["price"]) == by_zone[zone]["price"]
        assert float(shipped[zone]["spot_price"]) == by_zone[zone]["spot_price"]


@pytest.fixture
def aws_env(moto_server, monkeypatch, tmp_path):  # noqa: F811
    moto_server.clear()
    isolate_aws_env(monkeypatch, tmp_path, moto_server.url)
    monkeypatch.setenv("SKYBROKER_REFRESH_BACKOFF", "0.001")
    yield moto_server
    moto_server.clear()


def stubbed_pricing(pages_per_region: dict[str, list[list[str]]]):
    """A real boto3 pricing client whose GetProducts answers come from a Stubber, paged."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("pricing", region_name="us-east-1")
    stub = Stubber(client)
    for region, pages in pages_per_region.items():
        for i, page in enumerate(pages):
            resp = {"FormatVersion": "aws_v1", "PriceList": page}
            if i + 1 < len(pages):
                resp["NextToken"] = f"{region}-{i + 1}"
            expected = {"ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1", "MaxResults": 100,
                        "Filters": _filters(region)}
            if i:
                expected["NextToken"] = f"{region}-{i}"
            stub.add_response("get_products", resp, expected)
    stub.activate()
    return client, stub


def _filters(region: str) -> list[dict]:
    from skybroker.catalog.refresh.aws import _PRICE_FILTERS

    return [{"Type": "TERM_MATCH", "Field": k, "Value": v}
            for k, v in {**_PRICE_FILTERS, "regionCode": region}.items()]


def test_refresh_against_moto_writes_catalog_and_provenance(aws_env, sky_home):
    from skybroker.catalog import catalog_info, load_catalog
    from skybroker.catalog.refresh import refresh

    # Throttle the first spot-history call: the refresh must back off and carry on.
    aws_env.fault("DescribeSpotPriceHistory", "RequestLimitExceeded", times=1)
    known = [product(t, p) for t, p in KNOWN.items() if t != "p3.2xlarge"]
    pricing, stub = stubbed_pricing({"us-east-1": [known[:2], known[2:]]})
    # A type filter keeps moto fast (describing all ~1,200 types costs it ~13 s).
    result = refresh("aws", regions=["us-east-1"], types=TYPES, pricing=pricing)
    stub.assert_no_pending_responses()
    assert result.path == sky_home / "catalogs" / "aws.csv"
    table = load_catalog("aws")
    assert len(table) == result.rows > result.notes["rows_fetched"] > 0
    # Outside the refreshed scope, the shipped rows are carried over unchanged.
    p3 = [o for o in table if o.instance_type == "p3.2xlarge" and o.zone == "us-east-1a"]
    assert [(o.price, o.spot_price) for o in p3] == [(3.06, 0.6827)]
    west = [o for o in table if o.instance_type == "g4dn.xlarge" and o.region == "us-west-2"]
    assert west and west[0].price == 0.526
    rows = [o for o in table if o.instance_type == "g4dn.xlarge" and o.region == "us-east-1"]
    assert rows and not any(o.zone == "us-east-1a" and o.spot_price == 0.1872 for o in rows)
    assert all(o.zone and o.zone.startswith("us-east-1") for o in rows)
    assert all(o.price == 0.526 and o.accelerator_name == "T4" and o.accelerator_count == 1
               for o in rows)
    assert all(o.spot_price is not None for o in rows)  # moto's (fake) zone prices came through
    m6i = next(o for o in table if o.instance_type == "m6i.large" and o.region == "us-east-1")
    assert (m6i.vcpus, m6i.memory_gib, m6i.price) == (2, 8, 0.096)
    # Types without an on-demand price keep their spot-only rows (price NaN = not offered).
    unpriced = [o for o in table if o.instance_type == "c5.large"]
    assert unpriced and all(o.price is None or math.isnan(o.price) for o in unpriced)
    info = catalog_info("aws")
    assert info.path == result.path and "DescribeInstanceTypes" in info.source
    assert "partial" in info.source
    assert info.age_days == 0
    meta = json.loads((sky_home / "catalogs" / "SOURCES.json").read_text())["aws"]
    assert meta["rows"] == result.rows and meta["notes"]["types_priced"] == 3


def test_failed_refresh_keeps_old_catalog_and_says_why(aws_env, sky_home):
    from skybroker.catalog.refresh import refresh
    from skybroker.errors import CatalogError

    target = sky_home / "catalogs" / "aws.csv"
    target.parent.mkdir(parents=True)
    target.write_text("old")
    aws_env.fault("DescribeInstanceTypes", "AuthFailure", times=1)
    pricing, _ = stubbed_pricing({})
    with pytest.raises(CatalogError) as ei:
        refresh("aws", regions=["us-east-1"], types=TYPES, pricing=pricing)
    assert "credentials" in str(ei.value) and "old catalog is kept" in str(ei.value)
    assert ei.value.hint and "aws configure" in ei.value.hint
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["aws.csv"]  # no temp left over


def test_unreachable_endpoint_is_one_clear_line(monkeypatch, tmp_path):
    from skybroker.catalog.refresh import refresh
    from skybroker.errors import CatalogError

    isolate_aws_env(monkeypatch, tmp_path, "http://127.0.0.1:9")
    monkeypatch.setenv("SKYBROKER_REFRESH_BACKOFF", "0.001")
    with pytest.raises(CatalogError) as ei:
        refresh("aws", regions=["us-east-1"], pricing=object())
    assert "cannot reach the API at http://127.0.0.1:9" in str(ei.value)
