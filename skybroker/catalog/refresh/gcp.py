"""GCP offers: machine and accelerator types per zone (Compute Engine API) priced from the
Cloud Billing Catalog API's Compute Engine SKUs.

Why combine SKUs: GCP does not price machine types; it prices a family's vCPU-hour and
GiB-hour (e.g. "N1 Predefined Instance Core running in Americas") and each GPU-hour, per
region, with separate Preemptible (Spot) SKUs. An offer's price is vCPUs x core + GiB x RAM
(+ GPUs x GPU). GPUs attach to machine types by the same rules as the shipped catalog
(`skybroker.catalog.rules`), and only where the zone lists that accelerator type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from skybroker.catalog.accelerators import ACCELERATOR_MEMORY_GIB, normalize_vendor_name
from skybroker.catalog.refresh.common import Progress, with_retries
from skybroker.catalog.rules import arch_of, gcp_gpus_for, gcp_standalone

SOURCE = ("GCP APIs: compute machineTypes/acceleratorTypes aggregatedList, "
          "cloudbilling services/6F81-5844-456A/skus (Compute Engine)")
COMPUTE_SERVICE = "services/6F81-5844-456A"

# Compute Engine accelerator type -> our canonical name ('-vws' workstation types skipped).
GCE_ACCELERATORS = {
    "nvidia-tesla-t4": "T4", "nvidia-tesla-v100": "V100", "nvidia-tesla-p100": "P100",
    "nvidia-tesla-p4": "P4", "nvidia-tesla-k80": "K80", "nvidia-tesla-a100": "A100",
    "nvidia-a100-80gb": "A100-80GB", "nvidia-l4": "L4", "nvidia-h100-80gb": "H100",
    "nvidia-h100-mega-80gb": "H100-MEGA", "nvidia-h200-141gb": "H200", "nvidia-b200": "B200",
}
# Billing SKU GPU names ("Nvidia Tesla A100 80GB GPU running in ...") -> canonical.
_SKU_GPUS = {"Tesla T4": "T4", "Tesla V100": "V100", "Tesla P100": "P100", "Tesla P4": "P4",
             "Tesla K80": "K80", "Tesla A100": "A100", "Tesla A100 80GB": "A100-80GB",
             "A100 80GB": "A100-80GB", "L4": "L4", "H100 80GB": "H100",
             "H100 80GB Mega": "H100-MEGA", "H100 Mega 80GB": "H100-MEGA",
             "H200 141GB": "H200", "B200": "B200"}
# Families whose SKUs are not named after the family.
_SKU_FAMILY_ALIASES = {"COMPUTE OPTIMIZED": ("C2",), "MEMORY-OPTIMIZED": ("M1", "M2")}
# Shared-core E2 types are billed for a fraction of their 2 vCPUs (GCP's pricing page).
SHARED_CORE_VCPUS = {"e2-micro": 0.25, "e2-small": 0.5, "e2-medium": 1.0}
_SKIP = re.compile(r"Sole Tenancy|Custom|Commitment|Reserved|Extended|Premium|Licens|DWS|"
                   r"Calendar|Flex|Upgrade|Windows", re.IGNORECASE)
_CPU_RAM = re.compile(r"^(?P<fam>.+?)(?: AMD| Arm| Intel)?(?: Predefined)?(?: Instance)? "
                      r"(?P<kind>Core|Ram) running in ", re.IGNORECASE)
# Spot GPU SKUs are named either "Spot Preemptible Nvidia X GPU running in ..." or
# "Nvidia X GPU attached to Spot Preemptible VMs running in ..."; usage_type decides.
_GPU = re.compile(r"^Nvidia (?P<gpu>.+?) GPU(?: attached to (?:Spot )?Preemptible VMs)? "
                  r"running in ", re.IGNORECASE)
_FAMILY_CODE = re.compile(r"^[A-Z]\d+[A-Z]?$")  # N1, N2D, C3, M3, A3, T2A ...

# (kind, key, region, spot) -> USD per unit-hour; kind: 'core' | 'ram' | 'gpu'.
PriceKey = tuple[str, str, str, bool]


def unit_price(sku: dict) -> float | None:
    """USD per usage unit from the SKU's current pricing (last tier: the ongoing rate)."""
    infos = sku.get("pricing_info") or []
    if not infos:
        return None
    expr = infos[0].get("pricing_expression") or {}
    if expr.get("usage_unit") not in ("h", "GiBy.h"):
        return None
    rates = expr.get("tiered_rates") or []
    if not rates:
        return None
    p = rates[-1].get("unit_price") or {}
    return float(p.get("units") or 0) + float(p.get("nanos") or 0) / 1e9


def sku_prices(skus: Iterable[dict]) -> dict[PriceKey, float]:
    """Index Compute Engine SKUs by (core|ram|gpu, family or GPU, region, spot)."""
    out: dict[PriceKey, float] = {}
    scope: dict[PriceKey, int] = {}  # how many regions the winning SKU covers
    for sku in skus:
        cat = sku.get("category") or {}
        usage = cat.get("usage_type")
        if cat.get("resource_family") != "Compute" or usage not in ("OnDemand", "Preemptible"):
            continue
        spot = usage == "Preemptible"
        desc = re.sub(r"^(Spot )?Preemptible ", "", (sku.get("description") or "").strip())
        if _SKIP.search(desc):
            continue
        price = unit_price(sku)
        if price is None:
            continue
        g = _GPU.match(desc)
        if g:
            name = _SKU_GPUS.get(g.group("gpu")) or normalize_vendor_name(g.group("gpu"))
            keys = [("gpu", name)]
        else:
            m = _CPU_RAM.match(desc)
            if not m:
                continue
            fam = m.group("fam").strip().upper()
            first = fam.split()[0]
            if _FAMILY_CODE.match(first):  # "M3 Memory-optimized Instance Core" -> M3
                fam = first
            kind = "core" if m.group("kind").lower() == "core" else "ram"
            keys = [(kind, f) for f in _SKU_FAMILY_ALIASES.get(fam, (fam,))]
        regions = sku.get("service_regions") or []
        for region in regions:
            for kind, key in keys:
                k = (kind, key, region, spot)
                if len(regions) <= scope.get(k, 1 << 30):  # a regional SKU beats a multi-region one
                    out[k], scope[k] = price, len(regions)
    return out


def machine_price(machine: str, vcpus: float, mem: float, region: str, spot: bool,
                  prices: dict[PriceKey, float], gpu: tuple[str, int] | None = None) -> float | None:
    """vCPUs x core + GiB x RAM (+ GPUs x GPU) in `region`; None if a component is unpriced."""
    fam = machine.split("-")[0].upper()
    core, ram = prices.get(("core", fam, region, spot)), prices.get(("ram", fam, region, spot))
    if core is None or ram is None:
        return None
    total = SHARED_CORE_VCPUS.get(machine, vcpus) * core + mem * ram
    if gpu is not None:
        g = prices.get(("gpu", gpu[0], region, spot))
        if g is None:
            return None
        total += gpu[1] * g
    return round(total, 6)


def zone_accelerators(items: Iterable[tuple[str, Any]]) -> dict[str, dict[str, int]]:
    """zone -> {canonical GPU: max cards per VM} from an acceleratorTypes aggregated list."""
    out: dict[str, dict[str, int]] = {}
    for _, scoped in items:
        for a in scoped.get("accelerator_types") or []:
            name = GCE_ACCELERATORS.get(a.get("name", ""))
            if name:
                zone = a.get("zone", "").rsplit("/", 1)[-1]
                out.setdefault(zone, {})[name] = int(a.get("maximum_cards_per_instance") or 0)
    return out


def build_rows(machines: Iterable[dict], accels: dict[str, dict[str, int]],
               prices: dict[PriceKey, float], regions: list[str] | None = None
               ) -> tuple[list[dict], dict]:
    """Offers from machine types (dicts with name, guest_cpus, memory_mb, zone)."""
    rows: list[dict] = []
    unpriced = 0
    for mt in machines:
        name, zone = mt["name"], mt["zone"].rsplit("/", 1)[-1]
        region = zone.rsplit("-", 1)[0]
        if regions and region not in regions:
            continue
        if name in ("f1-micro", "g1-small"):  # legacy shared-core: own SKUs, not modelled
            continue
        vcpus, mem = float(mt["guest_cpus"]), round(float(mt["memory_mb"]) / 1024, 3)
        arch = arch_of("gcp", name)
        base = {"instance_type": name, "vcpus": vcpus, "memory_gib": mem, "arch": arch,
                "region": region, "zone": zone}
        if gcp_standalone(name):
            od = machine_price(name, vcpus, mem, region, False, prices)
            sp = machine_price(name, vcpus, mem, region, True, prices)
            if od is None and sp is None:
                unpriced += 1
            else:
                rows.append({**base, "accelerator_name": "", "accelerator_count": None,
                             "accelerator_memory_gib": None, "price": od, "spot_price": sp})
        for gpu, count in gcp_gpus_for(name, vcpus, mem):
            if accels.get(zone, {}).get(gpu, 0) < count:
                continue  # the zone does not offer this GPU (at this count)
            od = machine_price(name, vcpus, mem, region, False, prices, (gpu, count))
            sp = machine_price(name, vcpus, mem, region, True, prices, (gpu, count))
            if od is None and sp is None:
                unpriced += 1
                continue
            rows.append({**base, "accelerator_name": gpu, "accelerator_count": count,
                         "accelerator_memory_gib": ACCELERATOR_MEMORY_GIB.get(gpu),
                         "price": od, "spot_price": sp})
    return rows, {"offers_without_price": unpriced}


# ------------------------------------------------------------------------------- fetching

def _as_dict(message: Any) -> dict:
    """A proto-plus message as a plain dict with snake_case keys (what the parsers read)."""
    cls = type(message)
    return cls.to_dict(message, preserving_proto_field_name=True)


def _listing(method: Any, request: dict, progress: Progress, what: str) -> Iterator[Any]:
    """Every page of a GAPIC list call, one request per page, each retried on throttling.

    Paging by hand (page_token) rather than through the pager's generator: a generator that
    raised cannot be resumed, so a throttled page could not be retried.
    """
    token = ""
    while True:
        req = dict(request, page_token=token) if token else request
        pager = with_retries(lambda r=req: method(request=r), what=what)
        page = next(iter(pager.pages))  # the response already fetched: no second request
        progress.advance()
        yield page
        token = page.next_page_token
        if not token:
            return


def billing_client() -> Any:
    """CloudCatalogClient over REST with the GCP endpoint override (tests: a local stub)."""
    from skybroker.clouds.clients import gcp_billing_client

    return gcp_billing_client()


def refresh_rows(regions: list[str] | None = None, progress: Progress | None = None,
                 types: list[str] | None = None) -> tuple[list[dict], dict]:
    """All GCP offers (optionally only `regions` / `types`), from the live APIs."""
    from fnmatch import fnmatchcase

    from skybroker.clouds.clients import gcp_client, gcp_project

    progress = progress or Progress(False)
    project = gcp_project()
    progress.stage("gcp: pages", total=None)
    skus: list[dict] = []
    for page in _listing(billing_client().list_skus, {"parent": COMPUTE_SERVICE}, progress,
                         "billing SKUs"):
        skus.extend(_as_dict(s) for s in page.skus)
    prices = sku_prices(skus)
    accel_items: list[tuple[str, Any]] = []
    req = {"project": project}
    for page in _listing(gcp_client("AcceleratorTypes").aggregated_list, req, progress,
                         "accelerator types"):
        accel_items += [(k, _as_dict(v)) for k, v in page.items.items()]
    machines: list[dict] = []
    for page in _listing(gcp_client("MachineTypes").aggregated_list, req, progress,
                         "machine types"):
        for _, scoped in page.items.items():
            for mt in scoped.machine_types:
                if not types or any(fnmatchcase(mt.name, p) for p in types):
                    machines.append(_as_dict(mt))
    rows, notes = build_rows(machines, zone_accelerators(accel_items), prices, regions)
    notes.update({"skus": len(skus), "sku_prices_used": len(prices),
                  "machine_types": len({m["name"] for m in machines})})
    return rows, notes
