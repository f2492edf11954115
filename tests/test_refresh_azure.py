"""`sky catalog refresh azure`: the Retail Prices API over plain HTTP against a local stub
serving recorded pages (NextPageLink paging, throttling), prices checked against the shipped
catalog."""

from __future__ import annotations

import csv

import pytest
from stubs.retail_stub import retail_stub

CHECKED = [("Standard_NC6s_v3", "eastus"), ("Standard_NC6s_v3", "westeurope"),
           ("Standard_D4s_v3", "eastus"), ("Standard_D2s_v3", "uksouth"),
           ("Standard_NC4as_T4_v3", "westeurope"), ("Standard_NC24ads_A100_v4", "eastus")]


@pytest.fixture(scope="module")
def stub():
    s = retail_stub().start()
    yield s
    s.stop()


@pytest.fixture
def azure_env(stub, monkeypatch):
    stub.requests.clear()
    stub.faults.clear()
    monkeypatch.setenv("SKYBROKER_AZURE_PRICES_URL", stub.url + "/api/retail/prices")
    monkeypatch.setenv("SKYBROKER_REFRESH_BACKOFF", "0.001")
    return stub


def shipped() -> dict[tuple[str, str], dict]:
    from conftest import REPO

    with open(REPO / "catalogs" / "azure.csv") as fh:
        return {(r["instance_type"], r["region"]): r for r in csv.DictReader(fh)
                if (r["instance_type"], r["region"]) in CHECKED}


def test_refresh_prices_match_shipped_catalog(azure_env, sky_home):
    from skybroker.catalog import catalog_info, load_catalog
    from skybroker.catalog.refresh import refresh

    azure_env.fault(r"/api/retail/prices", status=429, times=1)
    result = refresh("azure")
    table = load_catalog("azure")
    assert len(table) == result.rows == 14  # (size, region) pairs priced, minus the unknown size
    offers = {(o.instance_type, o.region): o for o in table}
    for key, ref in shipped().items():
        o = offers[key]
        assert o.price == float(ref["price"]), key
        assert o.spot_price == float(ref["spot_price"]), key
        assert (o.vcpus, o.memory_gib, o.accelerator_name or "") == (
            float(ref["vcpus"]), float(ref["memory_gib"]), ref["accelerator_name"]), key
    assert result.notes["sizes_without_shape_sample"] == ["Standard_Z9s_v9"]
    # Paging followed NextPageLink (public host rewritten to our endpoint); 1 throttled retry.
    assert len(azure_env.requests) == 4
    assert azure_env.filters()[0] == "serviceName eq 'Virtual Machines' and priceType eq 'Consumption'"
    info = catalog_info("azure")
    assert "Retail Prices API" in info.source and info.age_days == 0


def test_region_refresh_sends_odata_filter_and_keeps_other_regions(azure_env):
    from skybroker.catalog import load_catalog
    from skybroker.catalog.refresh import refresh

    result = refresh("azure", regions=["eastus"])
    assert "(armRegionName eq 'eastus')" in azure_env.filters()[0]
    table = load_catalog("azure")
    assert result.notes["rows_fetched"] == 5
    assert len(table) == result.rows > 50000  # the shipped rows of other regions carried over


def test_retail_parsing_skips_windows_low_priority_and_cloud_services():
    from skybroker.catalog.refresh.azure import retail_prices

    base = {"type": "Consumption", "unitOfMeasure": "1 Hour", "armSkuName": "Standard_X",
            "armRegionName": "eastus", "productName": "Virtual Machines X Series",
            "isPrimaryMeterRegion": True, "effectiveStartDate": "2024-01-01T00:00:00Z"}
    items = [{**base, "skuName": "X", "retailPrice": 1.0},
             {**base, "skuName": "X Spot", "retailPrice": 0.2},
             {**base, "skuName": "X Low Priority", "retailPrice": 0.1},
             {**base, "skuName": "X", "retailPrice": 2.0,
              "productName": "Virtual Machines X Series Windows"},
             {**base, "skuName": "X", "retailPrice": 3.0,
              "productName": "Cloud Services X Series"}]
    od, spot = retail_prices(items)
    assert od == {("Standard_X", "eastus"): 1.0} and spot == {("Standard_X", "eastus"): 0.2}


def test_unreachable_endpoint_fails_cleanly(monkeypatch, sky_home):
    from skybroker.catalog.refresh import refresh
    from skybroker.errors import CatalogError

    monkeypatch.setenv("SKYBROKER_AZURE_PRICES_URL", "http://127.0.0.1:9/api/retail/prices")
    with pytest.raises(CatalogError) as ei:
        refresh("azure")
    assert "cannot reach the API at http://127.0.0.1:9" in str(ei.value)
    assert "SKYBROKER_AZURE_PRICES_URL" in ei.value.hint
    assert not (sky_home / "catalogs").exists()
