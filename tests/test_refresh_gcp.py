"""`sky catalog refresh gcp`: google-cloud-compute + google-cloud-billing over REST against a
local stub serving recorded pages; combined per-offer prices checked against the shipped
catalog."""

from __future__ import annotations

import csv

import pytest
from stubs.billing_stub import gcp_stub

ZONE = "us-central1-a"
# (machine, gpu, count) whose us-central1-a price must equal the shipped catalogs/gcp.csv.
CHECKED = [("n1-standard-8", "T4", 1), ("n1-standard-8", "", None), ("n1-highmem-8", "", None),
           ("e2-standard-4", "", None), ("e2-highcpu-4", "", None), ("a2-highgpu-1g", "A100", 1),
           ("g2-standard-8", "L4", 1), ("n1-highmem-8", "V100", 1)]


@pytest.fixture(scope="module")
def stub():
    s = gcp_stub().start()
    yield s
    s.stop()


@pytest.fixture
def gcp_env(stub, monkeypatch, tmp_path):
    stub.requests.clear()
    stub.faults.clear()
    monkeypatch.setenv("SKYBROKER_GCP_ENDPOINT", stub.url)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "skybroker-test")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-adc.json"))
    monkeypatch.setenv("SKYBROKER_REFRESH_BACKOFF", "0.001")
    monkeypatch.delenv("SKYBROKER_GCP_BILLING_ENDPOINT", raising=False)
    return stub


def shipped(zone: str = ZONE) -> dict[tuple, dict]:
    from conftest import REPO

    with open(REPO / "catalogs" / "gcp.csv") as fh:
        return {(r["instance_type"], r["accelerator_name"],
                 float(r["accelerator_count"]) if r["accelerator_count"] else None): r
                for r in csv.DictReader(fh) if r["zone"] == zone}


def test_sku_parsing_skips_commitments_sole_tenancy_custom_and_other_families():
    import json

    from conftest import REPO

    from skybroker.catalog.refresh.gcp import sku_prices

    raw = []
    for i in (1, 2):
        page = json.loads((REPO / "tests/fixtures/refresh/gcp" / f"skus_page{i}.json").read_text())
        raw += page["skus"]
    # REST JSON is camelCase; the SDK hands us snake_case dicts. Convert like proto-plus.
    from google.cloud import billing_v1

    skus = [billing_v1.Sku.to_dict(billing_v1.Sku.from_json(json.dumps(s)),
                                   preserving_proto_field_name=True) for s in raw]
    prices = sku_prices(skus)
    assert prices[("core", "N1", "us-central1", False)] == pytest.approx(0.031611)
    assert prices[("ram", "N1", "us-central1", True)] == pytest.approx(0.00151)
    assert prices[("gpu", "T4", "us-east1", True)] == pytest.approx(0.14)
    assert prices[("gpu", "A100", "europe-west4", False)] == pytest.approx(3.2273)
    assert prices[("gpu", "V100", "us-central1", True)] == pytest.approx(1.24)  # "attached to"
    assert prices[("core", "M3", "us-east1", False)] == pytest.approx(0.0398)
    assert ("core", "CUSTOM", "us-central1", False) not in prices
    assert all(k[1] not in ("N1 SOLE TENANCY",) for k in prices)
    assert not any(k[2] == "global" for k in prices)  # the Windows licence SKU


def test_refresh_computes_shipped_prices(gcp_env, sky_home):
    from skybroker.catalog import catalog_info, load_catalog
    from skybroker.catalog.refresh import refresh

    gcp_env.fault(r"/skus$", status=429, times=2)  # throttled twice, then served
    result = refresh("gcp")
    table = load_catalog("gcp")
    assert len(table) == result.rows == result.notes["rows_fetched"]
    offers = {(o.instance_type, o.accelerator_name or "", o.accelerator_count): o
              for o in table if o.zone == ZONE}
    ref = shipped()
    for key in CHECKED:
        o, r = offers[key], ref[key]
        assert o.price == pytest.approx(float(r["price"]), abs=2e-5), key
        assert o.spot_price == pytest.approx(float(r["spot_price"]), abs=2e-5), key
        assert (o.vcpus, o.memory_gib) == (float(r["vcpus"]), float(r["memory_gib"])), key
    # GPU attachment follows the build script's rules and the zone's accelerator list.
    n1_t4 = sorted(int(k[2]) for k in offers if k[0] == "n1-standard-8" and k[1] == "T4")
    assert n1_t4 == [1, 2, 4]
    assert ("a2-highgpu-1g", "", None) not in offers  # never offered without its GPUs
    assert not any(k[1] == "A100" for k in offers if k[0].startswith("n1-"))
    b_zone = {(o.instance_type, o.accelerator_name) for o in table if o.zone == "us-central1-b"}
    assert ("n1-standard-8", "V100") not in b_zone and ("n1-standard-8", "T4") in b_zone
    # Shared-core e2-medium is billed for 1 of its 2 vCPUs; f1-micro is not modelled.
    e2m = offers[("e2-medium", "", None)]
    assert e2m.price == pytest.approx(1 * 0.0218117 + 4 * 0.0029233, abs=1e-6)
    assert ("f1-micro", "", None) not in offers
    # Regions without spot SKUs for a family keep on-demand and leave spot empty.
    east = {(o.instance_type, o.accelerator_name or "", o.accelerator_count): o
            for o in table if o.zone == "us-east1-b"}
    assert east[("e2-standard-4", "", None)].spot_price is None
    assert east[("n1-standard-8", "T4", 1)].spot_price == pytest.approx(8 * .0098 + 30 * .0013 + .14)
    eu = {(o.instance_type, o.accelerator_name or ""): o for o in table if o.zone == "europe-west4-a"}
    assert eu[("n1-standard-8", "")].price == pytest.approx(8 * 0.034773 + 30 * 0.004661)
    # Both pages of every listing were read (paging), the throttled page retried.
    paths = gcp_env.paths()
    assert paths.count("/v1/services/6F81-5844-456A/skus") == 4
    assert sum("aggregated/machineTypes" in p for p in paths) == 2
    info = catalog_info("gcp")
    assert "cloudbilling" in info.source and info.age_days == 0


def test_region_refresh_merges_with_catalog_in_use(gcp_env, tmp_path, monkeypatch):
    from stubs.billing_stub import small_catalog_dir

    from skybroker.catalog import load_catalog
    from skybroker.catalog.refresh import refresh

    small = small_catalog_dir(tmp_path / "shipped", "gcp", lambda r: r["instance_type"] in (
        "n1-standard-8", "e2-standard-4") and r["region"] in ("us-east1", "asia-northeast1"))
    monkeypatch.setenv("SKYBROKER_CATALOG_DIR", str(small))
    result = refresh("gcp", regions=["us-east1"])
    table = load_catalog("gcp")
    regions = set(table.unique("region"))
    assert regions == {"asia-northeast1", "us-east1"}  # the other region's rows carried over
    assert result.notes["rows_carried_over"] == sum(o.region == "asia-northeast1" for o in table)
    assert result.notes["carried_over_from"].startswith("anycloud-sh/catalog")
    east = [o for o in table if o.zone == "us-east1-b" and o.instance_type == "n1-standard-8"
            and not o.accelerator_name]
    assert len(east) == 1 and east[0].spot_price == pytest.approx(8 * .0098 + 30 * .0013)


def test_permission_denied_keeps_old_catalog(gcp_env, sky_home):
    from skybroker.catalog.refresh import refresh
    from skybroker.errors import CatalogError

    gcp_env.fault(r"/skus$", status=403, times=1)
    with pytest.raises(CatalogError) as ei:
        refresh("gcp")
    assert "credentials rejected" in str(ei.value) and "old catalog is kept" in str(ei.value)
    assert not (sky_home / "catalogs" / "gcp.csv").exists()


def test_regional_sku_beats_multi_regional_one_whatever_the_order():
    from skybroker.catalog.refresh.gcp import sku_prices

    def sku(desc, regions, usd):
        return {"description": desc, "service_regions": regions,
                "category": {"resource_family": "Compute", "usage_type": "OnDemand"},
                "pricing_info": [{"pricing_expression": {"usage_unit": "h", "tiered_rates": [
                    {"unit_price": {"units": "0", "nanos": int(usd * 1e9)}}]}}]}

    wide = sku("N2 Instance Core running in Americas", ["us-central1", "us-east1"], 0.03)
    narrow = sku("N2 Instance Core running in Iowa", ["us-central1"], 0.025)
    for order in ([wide, narrow], [narrow, wide]):
        prices = sku_prices(order)
        assert prices[("core", "N2", "us-central1", False)] == pytest.approx(0.025)
        assert prices[("core", "N2", "us-east1", False)] == pytest.approx(0.03)
