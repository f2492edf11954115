"""Azure offers priced from the public Retail Prices API, shaped by the catalog in use.

Why the Retail Prices API: it is public (no credentials), covers every region, and carries
both pay-as-you-go and Spot meters (`skuName` "... Spot"). It knows nothing of vCPUs, memory
or GPU models, so shapes come from the catalog in use (the user's refreshed one, else the
shipped one); a size the price list has and no catalog knows is counted and skipped. (ARM
resource SKUs give vCPUs/memory/GPU counts but not GPU models; not used yet.)
Plain urllib: one GET per page, `NextPageLink` paging, 429/5xx retried with backoff.
"""

from __future__ import annotations

import csv
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

from skybroker.catalog.refresh.common import Progress, Throttled, with_retries

DEFAULT_URL = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"
BASE_FILTER = "serviceName eq 'Virtual Machines' and priceType eq 'Consumption'"
SOURCE = f"Azure Retail Prices API ({DEFAULT_URL}, {BASE_FILTER}; Linux, Spot = '* Spot')"

Shape = dict[str, object]


def prices_url() -> str:
    """Config `azure.prices_url`, env `SKYBROKER_AZURE_PRICES_URL`, else the public API."""
    from skybroker.clouds.clients import cloud_config

    return (cloud_config("azure").get("prices_url") or os.environ.get("SKYBROKER_AZURE_PRICES_URL")
            or DEFAULT_URL)


def _get_json(url: str, timeout: float = 60.0) -> dict:
    req = urllib.request.Request(url, headers={"Accept": "application/json",
                                               "User-Agent": "skybroker-catalog-refresh"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode())
    except urllib.error.HTTPError as e:
        if e.code == 429 or e.code >= 500:
            retry = e.headers.get("Retry-After") if e.headers else None
            raise Throttled(f"HTTP {e.code} from {url}",
                            float(retry) if retry and retry.isdigit() else None) from None
        raise


def _rebase(link: str, base: str) -> str:
    """Follow NextPageLink on our endpoint: the API writes its own public host into it."""
    b, n = urllib.parse.urlsplit(base), urllib.parse.urlsplit(link)
    return urllib.parse.urlunsplit((b.scheme, b.netloc, n.path, n.query, n.fragment))


def price_pages(odata_filter: str, base: str | None = None,
                progress: Progress | None = None) -> Iterator[list[dict]]:
    """Items of every page for the filter, each page retried on throttling."""
    base = base or prices_url()
    url = base + "?" + urllib.parse.urlencode({"api-version": API_VERSION, "$filter": odata_filter})
    while url:
        page = with_retries(lambda u=url: _get_json(u), what="retail prices page")
        if progress:
            progress.advance()
        yield page.get("Items") or []
        link = page.get("NextPageLink")
        url = _rebase(link, base) if link else ""


def retail_prices(items: Iterable[dict]) -> tuple[dict[tuple[str, str], float],
                                                 dict[tuple[str, str], float]]:
    """(size, region) -> USD/h for pay-as-you-go and Spot Linux meters (latest meter wins)."""
    od: dict[tuple[str, str], tuple[str, float]] = {}
    spot: dict[tuple[str, str], tuple[str, float]] = {}
    for it in items:
        sku, product = it.get("skuName") or "", it.get("productName") or ""
        if (it.get("type") != "Consumption" or it.get("unitOfMeasure") != "1 Hour"
                or "Windows" in product or "Cloud Services" in product
                or "Low Priority" in sku or it.get("isPrimaryMeterRegion") is False):
            continue
        size, region = it.get("armSkuName"), it.get("armRegionName")
        price = float(it.get("retailPrice") or 0)
        if not size or not region or price <= 0:
            continue
        target = spot if sku.endswith("Spot") else od
        key, started = (size, region), it.get("effectiveStartDate") or ""
        if key not in target or started >= target[key][0]:
            target[key] = (started, price)
    return ({k: v for k, (_, v) in od.items()}, {k: v for k, (_, v) in spot.items()})


def known_shapes(paths: Iterable[Path]) -> dict[str, Shape]:
    """Size -> shape columns from existing catalogs (first file that has the size wins)."""
    cols = ("vcpus", "memory_gib", "accelerator_name", "accelerator_count",
            "accelerator_memory_gib", "arch")
    shapes: dict[str, Shape] = {}
    for path in paths:
        if not path.is_file():
            continue
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                if r["instance_type"] not in shapes and r.get("vcpus"):
                    shapes[r["instance_type"]] = {c: _num(c, r.get(c, "")) for c in cols}
    return shapes


def _num(col: str, text: str) -> object:
    if col in ("accelerator_name", "arch"):
        return text
    return float(text) if text else None


def build_rows(od: dict[tuple[str, str], float], spot: dict[tuple[str, str], float],
               shapes: dict[str, Shape]) -> tuple[list[dict], dict]:
    rows, unknown = [], set()
    for size, region in sorted(set(od) | set(spot)):
        shape = shapes.get(size)
        if shape is None:
            unknown.add(size)
            continue
        rows.append({"instance_type": size, **shape, "region": region, "zone": "",
                     "price": od.get((size, region)), "spot_price": spot.get((size, region))})
    return rows, {"sizes_without_shape": len(unknown),
                  "sizes_without_shape_sample": sorted(unknown)[:20]}


def _shape_sources() -> list[Path]:
    """The user's refreshed catalog first, then the shipped ones (same order as loading)."""
    from skybroker.catalog.store import shipped_catalog_dirs, user_catalog_dir

    return [user_catalog_dir() / "azure.csv"] + [d / "azure.csv" for d in shipped_catalog_dirs()]


def refresh_rows(regions: list[str] | None = None, progress: Progress | None = None,
                 types: list[str] | None = None, base: str | None = None
                 ) -> tuple[list[dict], dict]:
    """Rows for `regions` (default all) from the retail price list."""
    from fnmatch import fnmatchcase

    progress = progress or Progress(False)
    progress.stage("azure: price pages", total=None)
    odata = BASE_FILTER
    if regions:
        odata += " and (" + " or ".join(f"armRegionName eq '{r}'" for r in regions) + ")"
    items: list[dict] = []
    for page in price_pages(odata, base, progress):
        items.extend(page)
    if regions:  # the server filters too; this guards against a proxy that ignores $filter
        items = [i for i in items if i.get("armRegionName") in regions]
    if types:
        items = [i for i in items if any(fnmatchcase(i.get("armSkuName") or "", p) for p in types)]
    od, spot = retail_prices(items)
    rows, notes = build_rows(od, spot, known_shapes(_shape_sources()))
    notes.update({"price_items": len(items), "sizes_priced": len({k[0] for k in od | spot}),
                  "shapes_from": "catalog in use (retail prices carry no shapes)"})
    return rows, notes
