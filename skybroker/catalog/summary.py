"""Group-by summaries of an OfferTable: cheapest offer per group, accelerator overview.

Used by `sky show-gpus` (and anything else that wants "cheapest per instance type"): the
grouping is done on the categorical codes with one lexsort, never by looping over rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skybroker.catalog.table import OfferTable

# The overview `sky show-gpus` prints without --all (newest / most asked for first).
COMMON_ACCELERATORS = ("B200", "H200", "H100", "H100-MEGA", "A100-80GB", "A100", "L40S", "L4",
                       "A10G", "A10", "T4", "V100", "V100-32GB", "P100")


def group_ids(table: OfferTable, by: tuple[str, ...]) -> np.ndarray:
    """A dense int id per row, equal for rows that agree on every column in `by`."""
    if not len(table):
        return np.zeros(0, dtype=np.int64)
    keys = []
    for col in by:
        if col in ("accelerator_count", "vcpus", "memory_gib", "accelerator_memory_gib",
                   "price", "spot_price"):
            _, codes = np.unique(np.nan_to_num(table.column(col), nan=-1.0), return_inverse=True)
        else:
            codes = table.categories(col)[1]
        keys.append(codes.astype(np.int64).reshape(-1))
    stacked = np.stack(keys, axis=1)
    _, ids = np.unique(stacked, axis=0, return_inverse=True)
    return ids.reshape(-1)


def cheapest_per_group(table: OfferTable, by: tuple[str, ...], price: str = "price") -> np.ndarray:
    """Row index of the cheapest `price` per group (rows without that price lose), by price."""
    if not len(table):
        return np.zeros(0, dtype=np.int64)
    ids = group_ids(table, by)
    p = table.column(price)
    order = np.lexsort((np.where(np.isnan(p), np.inf, p), ids))
    first = order[np.r_[True, ids[order][1:] != ids[order][:-1]]]
    best = p[first]
    return first[np.argsort(np.where(np.isnan(best), np.inf, best), kind="stable")]


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def accelerator_overview(table: OfferTable, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Per accelerator: counts on offer, clouds, cheapest on-demand and spot (per device-set)."""
    out = []
    acc_vocab, acc_codes = table.categories("accelerator_name")
    present = set(table.accelerator_names())
    for name in names if names is not None else sorted(present):
        if name not in present:
            continue
        code = int(np.searchsorted(acc_vocab, name))
        sub = table[acc_codes == code]
        counts = sorted(set(sub.accelerator_count.tolist()))
        rec: dict[str, Any] = {"accelerator": name, "counts": counts,
                               "clouds": sub.unique("cloud"),
                               "memory_gib": _num(np.nanmax(sub.accelerator_memory_gib))
                               if not np.isnan(sub.accelerator_memory_gib).all() else None}
        for kind, col in (("on_demand", "price"), ("spot", "spot_price")):
            p = sub.column(col) / sub.accelerator_count  # per device, comparable across counts
            if np.isnan(p).all():
                rec[kind] = None
                continue
            i = int(np.nanargmin(p))
            o = sub.offer(i)
            rec[kind] = {"price_per_device": float(p[i]), "cloud": o.cloud, "region": o.region,
                         "zone": o.zone, "instance_type": o.instance_type,
                         "count": o.accelerator_count}
        out.append(rec)
    return out


def instance_offers(table: OfferTable, per_region: bool = False) -> list[dict[str, Any]]:
    """One record per (cloud, instance type, GPU count[, region]), cheapest first.

    On-demand and spot are each the cheapest of the group, with where that price is (the two
    may be in different regions/zones); sorted by on-demand price, then spot.
    """
    by = ("cloud", "instance_type", "accelerator_count") + (("region",) if per_region else ())
    if not len(table):
        return []
    ids = group_ids(table, by)
    recs: dict[int, dict[str, Any]] = {}
    for col, kind in (("price", "on_demand"), ("spot_price", "spot")):
        p = table.column(col)
        order = np.lexsort((np.where(np.isnan(p), np.inf, p), ids))
        first = order[np.r_[True, ids[order][1:] != ids[order][:-1]]]
        for i in first.tolist():
            g = int(ids[i])
            if g not in recs:
                o = table.offer(i)
                recs[g] = {"cloud": o.cloud, "instance_type": o.instance_type,
                           "accelerator": o.accelerator_name, "count": o.accelerator_count,
                           "vcpus": o.vcpus, "memory_gib": o.memory_gib,
                           "accelerator_memory_gib": o.accelerator_memory_gib, "arch": o.arch}
            price = _num(p[i])
            recs[g][kind] = price
            if price is None:
                recs[g][f"{kind}_where"] = None
            else:
                o = table.offer(i)
                recs[g][f"{kind}_where"] = o.region + (f"/{o.zone}" if o.zone else "")
    inf = float("inf")
    return sorted(recs.values(), key=lambda r: (r["on_demand"] if r["on_demand"] is not None
                                                else inf, r["spot"] if r["spot"] is not None
                                                else inf, r["cloud"], r["instance_type"]))
