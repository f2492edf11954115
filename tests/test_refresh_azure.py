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


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory):
    """The shipped rows of the sizes the recorded pages price (every region), nothing else."""
    from stubs.billing_stub import small_catalog_dir

    sizes = {k[0] for k in CHECKED} | {"Standard_D2s_v3"}
    return small_catalog_dir(tmp_path_factory.mktemp("catalogs"), "azure",
                             lambda r: r["instance_type"] in sizes)


@pytest.fixture
def azure_env(stub, catalog_dir, monkeypatch):
    stub.requests.clear()
    stub.faults.clear()
    monkeypatch.setenv("SKYBROKER_CATALOG_DIR", str(catalog_dir))
    monkeypatch.setenv("SKYBROKER_AZURE_PRICES_URL", stub.url + "/api/retail/prices")
    monkeypatch.setenv("SKYBROKER_REFRESH_BACKOFF", "0.001")
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)  # shapes from the catalog
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
    assert result.notes["rows_carried_over"] > 100  # the other regions' rows of the catalog
    assert len(table) == result.rows == 5 + result.notes["rows_carried_over"]
    assert {o.region for o in table} > {"eastus", "japaneast", "brazilsouth"}
    assert "partial" in result.source


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


def self_signed_cert(directory) -> tuple:
    """(cert.pem, key.pem) for 127.0.0.1, made with `cryptography` (no openssl binary)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def arm(tmp_path_factory):
    """The ARM resource-SKU stub over TLS (azure-mgmt sends bearer tokens over https only)."""
    import ssl

    from stubs.retail_stub import arm_sku_stub

    cert, key = self_signed_cert(tmp_path_factory.mktemp("armtls"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    s = arm_sku_stub().start(ssl_context=ctx)
    s.cert = cert
    yield s
    s.stop()


def test_shapes_and_restrictions_from_arm_resource_skus(azure_env, arm, monkeypatch):
    from skybroker.catalog import catalog_info, load_catalog
    from skybroker.catalog.refresh import refresh

    arm.requests.clear()
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-00000000beef")
    monkeypatch.setenv("SKYBROKER_AZURE_ENDPOINT", arm.url)
    monkeypatch.setenv("SKYBROKER_AZURE_CA_BUNDLE", str(arm.cert))
    monkeypatch.setenv("SKYBROKER_AZURE_TOKEN", "dummy-token")
    result = refresh("azure")
    offers = {(o.instance_type, o.region): o for o in load_catalog("azure")}
    # The size no catalog knew now has a shape (from ARM), so it is priced.
    z = offers[("Standard_Z9s_v9", "eastus")]
    assert (z.vcpus, z.memory_gib, z.price, z.spot_price) == (9, 72, 9.99, 1.99)
    # Restricted for this subscription in westeurope: not offered there, still in eastus.
    assert ("Standard_NC24ads_A100_v4", "westeurope") not in offers
    a100 = offers[("Standard_NC24ads_A100_v4", "eastus")]
    assert (a100.accelerator_name, a100.accelerator_count, a100.price) == ("A100-80GB", 1, 3.673)
    nc6 = offers[("Standard_NC6s_v3", "eastus")]
    assert (nc6.vcpus, nc6.memory_gib, nc6.accelerator_name, nc6.price) == (6, 112, "V100", 3.06)
    assert result.notes["pairs_not_offered_to_subscription"] == 1
    assert len(offers) == result.rows == 14  # 15 priced pairs - 1 restricted
    assert [p for p in arm.paths()].count(
        "/subscriptions/00000000-0000-0000-0000-00000000beef/providers/Microsoft.Compute/skus") == 2
    assert "ARM Microsoft.Compute/skus" in catalog_info("azure").source


def test_arm_family_table_names_gpus_no_catalog_knows():
    from skybroker.catalog.refresh.azure import arm_shapes

    sku = {"resource_type": "virtualMachines", "name": "Standard_NC8as_T4_v9",
           "family": "standardNCASv3_T4Family", "locations": ["eastus"],
           "capabilities": [{"name": "vCPUs", "value": "8"}, {"name": "MemoryGB", "value": "56"},
                            {"name": "GPUs", "value": "1"}], "restrictions": []}
    mystery = {**sku, "name": "Standard_Q1", "family": "standardQFamily"}
    shapes, offered, notes = arm_shapes([sku, mystery], {})
    assert shapes["Standard_NC8as_T4_v9"]["accelerator_name"] == "T4"
    assert offered == {("Standard_NC8as_T4_v9", "eastus")}
    assert notes["gpu_sizes_without_model"] == ["Standard_Q1"]
