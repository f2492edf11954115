"""Azure offers priced from the public Retail Prices API, shaped by ARM resource SKUs.

Why the Retail Prices API: it is public (no credentials), covers every region, and carries
both pay-as-you-go and Spot meters (`skuName` "... Spot"). Plain urllib: one GET per page,
`NextPageLink` paging, 429/5xx retried with backoff.
It knows nothing of vCPUs, memory or GPUs. With a subscription configured, shapes come from
the ARM resource SKU listing (azure-mgmt-compute), which also says which sizes this
subscription may not use in a region; GPU *models* still come from the catalog in use or a
family table, since resource SKUs only count GPUs. Without a subscription, shapes come from
the catalog in use, and a size no catalog knows is counted and skipped, never guessed.
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

from skybroker.catalog.accelerators import ACCELERATOR_MEMORY_GIB
from skybroker.catalog.refresh.common import Progress, Throttled, with_retries

DEFAULT_URL = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"
BASE_FILTER = "serviceName eq 'Virtual Machines' and priceType eq 'Consumption'"
SOURCE = f"Azure Retail Prices API ({DEFAULT_URL}, {BASE_FILTER}; Linux, Spot = '* Spot')"
# Resource-SKU family -> GPU model, for GPU sizes no catalog names yet.
FAMILY_GPUS = {
    "standardNCFamily": "K80", "standardNCSv2Family": "P100", "standardNCSv3Family": "V100",
    "standardNDSFamily": "P40", "standardNDSv2Family": "V100", "standardNVFamily": "M60",
    "standardNVSv3Family": "M60", "standardNCASv3_T4Family": "T4",
    "StandardNCADSA100v4Family": "A100-80GB", "standardNDASv4_A100Family": "A100",
    "StandardNDAMSv4_A100Family": "A100-80GB", "standardNDSH100v5Family": "H100",
    "StandardNCadsH100v5Family": "H100",
}

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


def known_shapes(paths: Iterable[Path], wanted: set[str] | None = None) -> dict[str, Shape]:
    """Size -> shape columns from existing catalogs (first file that has the size wins)."""
    cols = ("vcpus", "memory_gib", "accelerator_name", "accelerator_count",
            "accelerator_memory_gib", "arch")
    shapes: dict[str, Shape] = {}
    for path in paths:
        if not path.is_file():
            continue
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            at = {c: header.index(c) for c in ("instance_type", *cols) if c in header}
            if "instance_type" not in at or "vcpus" not in at:
                continue
            for r in reader:
                size = r[at["instance_type"]] if r else ""
                if (not size or size in shapes or (wanted is not None and size not in wanted)
                        or not r[at["vcpus"]]):
                    continue
                shapes[size] = {c: _num(c, r[at[c]] if c in at else "") for c in cols}
    return shapes


def _num(col: str, text: str) -> object:
    if col in ("accelerator_name", "arch"):
        return text or ("x86_64" if col == "arch" else "")
    return float(text) if text else None


def arm_shapes(skus: Iterable[dict], catalog: dict[str, Shape]
               ) -> tuple[dict[str, Shape], set[tuple[str, str]], dict]:
    """Shapes and the (size, region) pairs this subscription may use, from resource SKUs
    (`ResourceSku.as_dict()`: snake_case or REST camelCase, depending on the SDK version).
    Accelerator fields from the catalog when it knows the size (it names fractional GPUs
    right), else the family table."""
    shapes: dict[str, Shape] = {}
    offered: set[tuple[str, str]] = set()
    unnamed: set[str] = set()
    for s in skus:
        if _k(s, "resource_type") != "virtualMachines":
            continue
        caps = {c.get("name"): c.get("value") for c in s.get("capabilities") or []}
        if not caps.get("vCPUs") or not caps.get("MemoryGB"):
            continue
        size, gpus = s["name"], float(caps.get("GPUs") or 0)
        known = catalog.get(size) or {}
        if known.get("accelerator_name"):
            acc = {k: known[k] for k in ("accelerator_name", "accelerator_count",
                                         "accelerator_memory_gib")}
        elif gpus:
            name = FAMILY_GPUS.get(s.get("family") or "")
            if not name:
                unnamed.add(size)
                continue
            acc = {"accelerator_name": name, "accelerator_count": gpus,
                   "accelerator_memory_gib": ACCELERATOR_MEMORY_GIB.get(name)}
        else:
            acc = {"accelerator_name": "", "accelerator_count": None,
                   "accelerator_memory_gib": None}
        arch = "arm64" if str(caps.get("CpuArchitectureType", "")).lower() == "arm64" else "x86_64"
        shapes[size] = {"vcpus": float(caps["vCPUs"]), "memory_gib": float(caps["MemoryGB"]),
                        **acc, "arch": arch}
        blocked = {loc.lower() for r in s.get("restrictions") or [] if r.get("type") == "Location"
                   for loc in ((_k(r, "restriction_info") or {}).get("locations")
                               or r.get("values") or [])}
        offered |= {(size, loc.lower()) for loc in s.get("locations") or []
                    if loc.lower() not in blocked}
    return shapes, offered, {"gpu_sizes_without_model": sorted(unnamed)[:20]}


def _k(d: dict, snake: str) -> object:
    """d[snake] or d[camelCase]: azure-mgmt's as_dict() changed key style across versions."""
    if snake in d:
        return d[snake]
    head, *rest = snake.split("_")
    return d.get(head + "".join(w.title() for w in rest))


def build_rows(od: dict[tuple[str, str], float], spot: dict[tuple[str, str], float],
               shapes: dict[str, Shape], offered: set[tuple[str, str]] | None = None
               ) -> tuple[list[dict], dict]:
    """Region rows for every priced (size, region) with a shape (and allowed, if `offered`)."""
    rows, unknown, restricted = [], set(), 0
    for size, region in sorted(set(od) | set(spot)):
        shape = shapes.get(size)
        if shape is None:
            unknown.add(size)
            continue
        if offered is not None and (size, region.lower()) not in offered:
            restricted += 1
            continue
        rows.append({"instance_type": size, **shape, "region": region, "zone": "",
                     "price": od.get((size, region)), "spot_price": spot.get((size, region))})
    notes = {"sizes_without_shape": len(unknown),
             "sizes_without_shape_sample": sorted(unknown)[:20]}
    if offered is not None:
        notes["pairs_not_offered_to_subscription"] = restricted
    return rows, notes


def _shape_sources() -> list[Path]:
    """The user's refreshed catalog first, then the shipped ones (same order as loading)."""
    from skybroker.catalog.store import shipped_catalog_dirs, user_catalog_dir

    return [user_catalog_dir() / "azure.csv"] + [d / "azure.csv" for d in shipped_catalog_dirs()]


def _subscription_configured() -> bool:
    from skybroker.clouds.clients import cloud_config

    return bool(cloud_config("azure").get("subscription_id") or os.environ.get("AZURE_SUBSCRIPTION_ID"))


def fetch_resource_skus(regions: list[str] | None, progress: Progress) -> list[dict]:
    """The ARM resource SKU listing (one per region when regions are given), as dicts."""
    from skybroker.clouds.clients import azure_client

    client = azure_client("compute")
    out: list[dict] = []
    for region in regions or [None]:
        flt = f"location eq '{region}'" if region else None
        got = with_retries(lambda f=flt: [s.as_dict() for s in client.resource_skus.list(filter=f)],
                           what="resource SKUs")
        out.extend(got)
        progress.advance()
    return out


def refresh_rows(regions: list[str] | None = None, progress: Progress | None = None,
                 types: list[str] | None = None, base: str | None = None,
                 shapes: str = "auto") -> tuple[list[dict], dict]:
    """Rows for `regions` (default all) from the retail price list.

    `shapes`: 'arm' (resource SKUs), 'catalog' (the catalog in use), or 'auto' = 'arm' when
    an Azure subscription is configured.
    """
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
    catalog = known_shapes(_shape_sources(), {k[0] for k in od | spot})
    use_arm = shapes == "arm" or (shapes == "auto" and _subscription_configured())
    if use_arm:
        sizes, offered, arm_notes = arm_shapes(fetch_resource_skus(regions, progress), catalog)
        rows, notes = build_rows(od, spot, sizes, offered)
        notes.update(arm_notes, source=SOURCE + "; shapes: ARM Microsoft.Compute/skus")
    else:
        rows, notes = build_rows(od, spot, catalog)
        notes["source"] = SOURCE + "; shapes: the catalog in use (no subscription configured)"
    notes.update({"price_items": len(items), "sizes_priced": len({k[0] for k in od | spot})})
    return rows, notes
