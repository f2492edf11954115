"""AWS offers from AWS's own APIs: EC2 describe calls for shapes, zones and spot prices, the
Price List API (`pricing:GetProducts`) for on-demand prices.

Why these calls: `describe_instance_types` is the authority on vCPUs, memory and GPUs;
`describe_instance_type_offerings` on which zone sells which type; spot prices are per zone
and move, so each (zone, type) keeps its own latest price rather than a regional minimum.
The Price List API is only served in a few regions (us-east-1 among them) and answers
JSON documents as strings, one per product.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any

from skybroker.catalog.accelerators import ACCELERATOR_MEMORY_GIB, normalize_vendor_name
from skybroker.catalog.refresh.common import Progress, with_retries
from skybroker.catalog.rules import arch_of

SOURCE = ("AWS APIs: ec2 DescribeInstanceTypes/DescribeInstanceTypeOfferings/"
          "DescribeSpotPriceHistory, pricing GetProducts (AmazonEC2, Linux, shared tenancy)")
PRICING_REGION = "us-east-1"  # the Price List API lives here (and in ap-south-1, eu-central-1)
_PRICE_FILTERS = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA",
                  "capacitystatus": "Used", "licenseModel": "No License required"}

Shape = tuple[float, float, str | None, float | None, float | None, str]


def _pages(call, what: str, **kwargs: Any) -> Iterator[dict]:
    """Every page of an EC2-style NextToken listing, each request retried on throttling."""
    token = None
    while True:
        args = dict(kwargs, NextToken=token) if token else kwargs
        page = with_retries(lambda a=args: call(**a), what=what)
        yield page
        token = page.get("NextToken")
        if not token:
            return


# ------------------------------------------------------------------------------- parsing

def shape_of(it: dict) -> Shape:
    """(vcpus, memory GiB, accelerator, count, accelerator GiB, arch) of one InstanceTypeInfo."""
    vcpus = float(it.get("VCpuInfo", {}).get("DefaultVCpus") or 0)
    mem = round(float(it.get("MemoryInfo", {}).get("SizeInMiB") or 0) / 1024, 3)
    archs = it.get("ProcessorInfo", {}).get("SupportedArchitectures") or []
    arch = "arm64" if "arm64" in archs else ("x86_64" if archs else arch_of("aws", it["InstanceType"]))
    name = count = acc_mem = None
    gpus = (it.get("GpuInfo") or {}).get("Gpus") or []
    neuron = (it.get("NeuronInfo") or {}).get("NeuronDevices") or []
    infer = (it.get("InferenceAcceleratorInfo") or {}).get("Accelerators") or []
    if gpus:
        g = gpus[0]
        name = normalize_vendor_name(g.get("Name", ""))
        count = float(sum(x.get("Count", 0) for x in gpus))
        mib = (g.get("MemoryInfo") or {}).get("SizeInMiB")
        acc_mem = round(mib / 1024, 3) if mib else ACCELERATOR_MEMORY_GIB.get(name)
    elif neuron or infer:
        d = (neuron or infer)[0]
        name = normalize_vendor_name(d.get("Name", ""))
        count = float(sum(x.get("Count", 0) for x in (neuron or infer)))
        mib = (d.get("MemoryInfo") or {}).get("SizeInMiB")
        acc_mem = round(mib / 1024, 3) if mib else ACCELERATOR_MEMORY_GIB.get(name)
    return vcpus, mem, name, count, acc_mem, arch


def on_demand_price(price_item: str | dict) -> tuple[str, float] | None:
    """(instance type, USD/hour) from one Price List product document, None if not hourly."""
    doc = json.loads(price_item) if isinstance(price_item, str) else price_item
    itype = doc.get("product", {}).get("attributes", {}).get("instanceType")
    if not itype:
        return None
    for term in (doc.get("terms", {}).get("OnDemand") or {}).values():
        for dim in (term.get("priceDimensions") or {}).values():
            if dim.get("unit") not in ("Hrs", "Hours", "Hour"):
                continue
            usd = dim.get("pricePerUnit", {}).get("USD")
            if usd is None:
                continue
            value = float(usd)
            if value > 0:
                return itype, value
    return None


def latest_spot(history: Iterable[dict]) -> dict[tuple[str, str], float]:
    """(zone, type) -> the most recent spot price; zones are kept apart on purpose."""
    best: dict[tuple[str, str], tuple[dt.datetime | str, float]] = {}
    for h in history:
        key = (h["AvailabilityZone"], h["InstanceType"])
        ts = h.get("Timestamp") or ""
        if key not in best or _later(ts, best[key][0]):
            best[key] = (ts, float(h["SpotPrice"]))
    return {k: v for k, (_, v) in best.items()}


def _later(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return str(a) > str(b)
    return a > b


def build_rows(region: str, shapes: dict[str, Shape], offerings: dict[str, list[str]],
               prices: dict[str, float], spot: dict[tuple[str, str], float]) -> list[dict]:
    """One row per (type, zone) that is offered and has some price (on-demand or spot)."""
    rows = []
    for itype, zones in offerings.items():
        shape = shapes.get(itype)
        if shape is None:
            continue
        vcpus, mem, acc, count, acc_mem, arch = shape
        price = prices.get(itype)
        for zone in sorted(zones):
            sp = spot.get((zone, itype))
            if price is None and sp is None:
                continue
            rows.append({"instance_type": itype, "vcpus": vcpus, "memory_gib": mem,
                         "accelerator_name": acc or "", "accelerator_count": count,
                         "accelerator_memory_gib": acc_mem, "arch": arch, "region": region,
                         "zone": zone, "price": price, "spot_price": sp})
    return rows


# ------------------------------------------------------------------------------- fetching

def _chunks(items: list[str], n: int = 100) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def fetch_region(region: str, ec2: Any, pricing: Any, progress: Progress,
                 types: list[str] | None = None) -> tuple[list[dict], dict]:
    """Rows of one region, plus counts for the provenance notes.

    `types` (names or wildcards like 'g5.*') narrows every call server-side; offerings and
    spot history are then asked for the resolved names, since not every endpoint expands
    wildcards there.
    """
    shapes: dict[str, Shape] = {}
    type_filter = {"Filters": [{"Name": "instance-type", "Values": types}]} if types else {}
    for page in _pages(ec2.describe_instance_types, f"{region} instance types", **type_filter):
        for it in page.get("InstanceTypes", []):
            shapes[it["InstanceType"]] = shape_of(it)
    progress.advance()
    names = sorted(shapes)
    scopes = [{"Filters": [{"Name": "instance-type", "Values": c}]} for c in _chunks(names)] \
        if types else [{}]
    offerings: dict[str, list[str]] = {}
    for scope in scopes:
        for page in _pages(ec2.describe_instance_type_offerings, f"{region} offerings",
                           LocationType="availability-zone", **scope):
            for o in page.get("InstanceTypeOfferings", []):
                if o["InstanceType"] in shapes:
                    offerings.setdefault(o["InstanceType"], []).append(o["Location"])
    progress.advance()
    prices: dict[str, float] = {}
    filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v}
               for k, v in {**_PRICE_FILTERS, "regionCode": region}.items()]
    for page in _pages(pricing.get_products, f"{region} prices", ServiceCode="AmazonEC2",
                       Filters=filters, FormatVersion="aws_v1", MaxResults=100):
        for item in page.get("PriceList", []):
            hit = on_demand_price(item)
            if hit:
                prices[hit[0]] = hit[1]
    progress.advance()
    history: list[dict] = []
    now = dt.datetime.now(dt.timezone.utc)
    spot_scopes = [{"InstanceTypes": c} for c in _chunks(names)] if types else [{}]
    for scope in spot_scopes:
        for page in _pages(ec2.describe_spot_price_history, f"{region} spot prices",
                           ProductDescriptions=["Linux/UNIX"], StartTime=now, **scope):
            history.extend(h for h in page.get("SpotPriceHistory", [])
                           if h["InstanceType"] in shapes)
    progress.advance()
    rows = build_rows(region, shapes, offerings, prices, latest_spot(history))
    notes = {"instance_types": len(shapes), "types_priced": len(prices),
             "spot_zone_prices": len({(h["AvailabilityZone"], h["InstanceType"]) for h in history})}
    return rows, notes


def regions_to_refresh(ec2: Any) -> list[str]:
    """Every region the account has enabled."""
    resp = with_retries(lambda: ec2.describe_regions(), what="regions")
    return sorted(r["RegionName"] for r in resp.get("Regions", []))


def refresh_rows(regions: list[str] | None = None, progress: Progress | None = None,
                 types: list[str] | None = None, pricing: Any = None) -> tuple[list[dict], dict]:
    """All rows for `regions` (default: every enabled region) and `types` (default: all)."""
    from skybroker.clouds.clients import aws_client

    progress = progress or Progress(False)
    regions = regions or regions_to_refresh(aws_client("ec2", PRICING_REGION))
    pricing = pricing or aws_client("pricing", PRICING_REGION)
    progress.stage("aws", total=4 * len(regions))
    rows: list[dict] = []
    notes: dict[str, Any] = {"regions": regions, **({"types": types} if types else {})}
    for region in regions:
        progress.advance(0, description=f"aws {region}")
        got, n = fetch_region(region, aws_client("ec2", region), pricing, progress, types)
        rows.extend(got)
        for k, v in n.items():
            notes[k] = notes.get(k, 0) + v
    return rows, notes
