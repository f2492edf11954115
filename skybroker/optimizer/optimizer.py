"""Task -> Plan: every feasible placement across enabled clouds, ranked.

Unlike SkyPilot's optimizer, which keeps only the cheapest instance type per cloud, this one
keeps every (cloud, region, zone, instance type, spot/on-demand) row that satisfies the
request, because the ranking is also the failover order: when the cheapest zone is out of
capacity, the next-cheapest feasible row is what a launch should try next.

All filtering is vectorised over the catalog's columns, so a plan over ~130k offers takes a few
milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from skybroker.catalog import OfferTable, canonical_accelerator, load_catalogs
from skybroker.errors import ResourcesUnavailableError, SkyError
from skybroker.optimizer.plan import Plan, Rejection
from skybroker.utils.registry import did_you_mean

# With no accelerator, instance type or cpus given, SkyPilot picks a general-purpose VM of a
# few vCPUs; so do we, and we leave accelerator VMs out of such plans.
DEFAULT_CPUS = (4.0, True)
SORT_KEYS = ("cost", "time")

# A blocked scope: any of the non-None fields must all match a row to block it.
BlockKey = tuple[str | None, str | None, str | None, str | None, bool | None]


_SLICES: dict[int, tuple[np.ndarray, list[str]]] = {}


def _cloud_slices(table: OfferTable) -> tuple[np.ndarray, list[str]]:
    """Start row and name of each cloud's block (catalog rows are grouped by cloud)."""
    vocab, codes = table.categories("cloud")
    key = id(codes)
    if key not in _SLICES:
        if len(codes):
            cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
            starts = np.r_[0, cuts]
        else:
            starts = np.array([], dtype=int)
        _SLICES.clear()
        _SLICES[key] = (starts, [str(vocab[codes[i]]) for i in starts])
    return _SLICES[key]


class _Funnel:
    """Narrows a shrinking array of row indices, recording per cloud what each step removed.

    Working on indices rather than full-length masks means that after the first selective
    step (an accelerator or instance-type match) later steps touch only a few hundred rows.
    """

    def __init__(self, table: OfferTable) -> None:
        self.table = table
        self._idx: np.ndarray | None = None  # None: still every row, columns need no gather
        self.rejected: list[Rejection] = []
        self.starts, self.names = _cloud_slices(table)

    @property
    def idx(self) -> np.ndarray:
        return np.arange(len(self.table)) if self._idx is None else self._idx

    def num(self, name: str) -> np.ndarray:
        """A numeric column's values at the surviving rows."""
        column = self.table.column(name)
        return column if self._idx is None else column[self._idx]

    def _codes(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        vocab, codes = self.table.categories(name)
        return vocab, (codes if self._idx is None else codes[self._idx])

    def eq(self, name: str, values: str | list[str]) -> np.ndarray:
        """Surviving rows whose string column equals `values` (one or any of several).

        Compares the column's small vocabulary, then looks rows up by code: string columns
        are never decoded (92k strings per column would cost more than the whole plan).
        """
        vocab, codes = self._codes(name)
        wanted = [values] if isinstance(values, str) else list(values)
        return np.isin(vocab, wanted)[codes]

    def values(self, name: str) -> list[str]:
        """Distinct values of a string column among the surviving rows (for suggestions)."""
        vocab, codes = self._codes(name)
        return [str(v) for v in vocab[np.unique(codes)]] if len(codes) else []

    def apply(self, keep: np.ndarray, reason: str) -> None:
        """Keep rows where `keep` (aligned with the surviving rows) is true."""
        if keep.all():
            return
        if self._idx is None:  # count drops per cloud block without gathering indices
            ends = np.r_[self.starts[1:], len(keep)]
            counts = [int(b - a - np.count_nonzero(keep[a:b])) for a, b in zip(self.starts, ends)]
            self._idx = np.flatnonzero(keep)
        else:
            codes = np.searchsorted(self.starts, self._idx[~keep], side="right") - 1
            counts = np.bincount(codes, minlength=len(self.names)).tolist()
            self._idx = self._idx[keep]
        for code, n in enumerate(counts):
            if n:
                self.rejected.append(Rejection(self.names[code], reason, n))


def _pin(funnel: _Funnel, name: str, pin: str, reason: str) -> None:
    """Keep rows whose `name` is `pin`; a pin matching nothing is a did-you-mean error."""
    keep = funnel.eq(name, pin)
    if not keep.any():
        known = funnel.values(name)
        raise SkyError(f"resources.{name}: {pin!r} is not offered.{did_you_mean(pin, known)}")
    funnel.apply(keep, reason)


def _candidate_rows(table: OfferTable, res, funnel: _Funnel) -> None:
    """Narrow the funnel to rows satisfying one Resources alternative (spot aside)."""
    if res.cloud:
        cloud = res.cloud.lower()
        if cloud not in funnel.names:
            raise SkyError(
                f"resources.cloud: {res.cloud!r} is not enabled or has no catalog.",
                hint="Enabled clouds come from allowed_clouds in the config; see `sky check`.",
            )
        funnel.apply(funnel.eq("cloud", cloud), f"pinned to cloud {res.cloud}")
    acc = res.accelerator()
    if acc is not None:  # the most selective step first
        name, count = acc
        # Catalog rows carry canonical names: canonicalise once, then compare exactly.
        canon = (canonical_accelerator(name)
                 or canonical_accelerator(name, table.accelerator_names()) or name)
        has_name = funnel.eq("accelerator_name", canon)
        if not has_name.any():
            known = [n for n in funnel.values("accelerator_name") if n]
            raise ResourcesUnavailableError(
                f"resources.accelerators: {name!r} is not offered by the enabled clouds"
                f" in the requested location.{did_you_mean(name, known)}",
                hint="`sky show-gpus` lists the accelerators and where they are offered.",
            )
        funnel.apply(has_name, f"no {name}")
    if res.instance_type:
        _pin(funnel, "instance_type", res.instance_type, f"not instance type {res.instance_type}")
    if res.region:
        _pin(funnel, "region", res.region, f"not in region {res.region}")
    if res.zone:
        _pin(funnel, "zone", res.zone, f"not in zone {res.zone}")
    if isinstance(res.image_id, dict) and res.image_id:
        regions = list(res.image_id)
        funnel.apply(funnel.eq("region", regions),
                     f"no image_id for the region (have {', '.join(regions)})")
    if acc is not None:
        # Fractional counts (K80:0.5) share one device; offers come in whole devices.
        want = math.ceil(acc[1]) if acc[1] < 1 else acc[1]
        funnel.apply(np.isclose(funnel.num("accelerator_count"), want),
                     f"not exactly {want:g}x {acc[0]}")
    elif not res.instance_type:
        funnel.apply(~(funnel.num("accelerator_count") > 0),
                     "has accelerators the task does not ask for")

    cpus = res.cpus_requirement()
    if cpus is None and acc is None and not res.instance_type:
        cpus = DEFAULT_CPUS
    if cpus is not None:
        v, at_least = cpus
        col = funnel.num("vcpus")
        funnel.apply(col >= v - 1e-9 if at_least else np.isclose(col, v),
                     f"vCPUs {'>=' if at_least else '=='} {v:g} not met")
    mem = res.memory_requirement()
    if mem is not None:
        v, at_least = mem
        col = funnel.num("memory_gib")
        funnel.apply(col >= v - 1e-9 if at_least else np.isclose(col, v),
                     f"memory {'>=' if at_least else '=='} {v:g} GiB not met")


def _blocked_mask(table: OfferTable, rows: np.ndarray, spot: bool,
                  blocked: Iterable[BlockKey]) -> np.ndarray:
    """True for rows matched by any blocklist entry (cloud, region, zone, type, spot)."""
    out = np.zeros(len(rows), dtype=bool)
    for cloud, region, zone, itype, bspot in blocked:
        if bspot is not None and bspot != spot:
            continue
        m = np.ones(len(rows), dtype=bool)
        for name, val in (("cloud", cloud), ("region", region), ("zone", zone),
                          ("instance_type", itype)):
            if val is not None:
                vocab, codes = table.categories(name)
                m &= (vocab == val)[codes[rows]]
        out |= m
    return out


def optimize(task, clouds: list[str] | None = None, blocked: Iterable[BlockKey] = (),
             sort_by: str = "cost", table: OfferTable | None = None) -> Plan:
    """Rank every feasible placement of `task` on `clouds` (default: enabled clouds).

    `blocked` entries (cloud, region, zone, instance_type, spot) with None as a wildcard
    remove matching rows (used by failover); `table` lets callers pass a preloaded catalog.
    Raises ResourcesUnavailableError, with the reasons, when nothing is feasible.
    """
    if sort_by not in SORT_KEYS:
        raise SkyError(f"Unknown sort key {sort_by!r}.{did_you_mean(sort_by, SORT_KEYS)}")
    if table is None:
        from skybroker import config
        from skybroker.catalog import available_clouds

        if not clouds:  # enabled clouds that have a catalog; an explicit cloud must have one
            have = set(available_clouds())
            clouds = [c for c in config.enabled_clouds(dryrun=True) if c in have]
        table = load_catalogs(clouds)
    blocked = list(blocked)
    num_nodes = int(task.num_nodes or 1)
    parts: list[tuple[np.ndarray, bool, int]] = []  # (rows, spot, alternative)
    rejected: list[Rejection] = []
    errors: list[str] = []
    alternatives = list(task.resources) or [None]
    shared: dict[object, tuple[np.ndarray, list[Rejection]]] = {}
    for i, res in enumerate(alternatives):
        if res is None:
            from skybroker.task import Resources

            res = Resources()
        # Spot and on-demand alternatives of one shape share everything but the price check.
        key = repr(res.copy(use_spot=False)) if hasattr(res, "copy") else i
        funnel = _Funnel(table)
        if key in shared:
            funnel._idx, done = shared[key]
            funnel.rejected = list(done)
        else:
            try:
                _candidate_rows(table, res, funnel)
            except SkyError as e:
                if len(alternatives) == 1:
                    raise
                errors.append(f"alternative {i + 1}: {e}")
                continue
            shared[key] = (funnel.idx, list(funnel.rejected))
        kind = "spot" if res.use_spot else "on-demand"
        funnel.apply(~np.isnan(funnel.num("spot_price" if res.use_spot else "price")),
                     f"no {kind} price")
        rows = funnel.idx
        if blocked:
            b = _blocked_mask(table, rows, res.use_spot, blocked)
            if b.any():
                funnel.rejected.append(Rejection("all", "blocked after a recent failure", int(b.sum())))
            rows = rows[~b]
        rejected.extend(funnel.rejected)
        if len(rows):
            parts.append((rows, bool(res.use_spot), i))

    if not parts:
        reasons = errors + [str(r) for r in _summarise(rejected)]
        raise ResourcesUnavailableError(
            "No feasible placement for task"
            f"{' ' + repr(task.name) if getattr(task, 'name', None) else ''} on "
            f"{', '.join(table.unique('cloud')) or 'no cloud'}:\n  "
            + "\n  ".join(reasons[:12]),
            hint="Relax the resources (e.g. '4+' for at least 4 vCPUs), or run `sky show-gpus`.",
        )

    rows = np.concatenate([p[0] for p in parts])
    spot = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    alt = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    unit = np.where(spot, table.spot_price[rows], table.price[rows])
    cost = unit * num_nodes
    # Rank: ordered alternatives first by their order, then by cost (or by speed: more
    # accelerators / vCPUs first); ties broken by spot-first, then catalog row order, which is
    # deterministic and avoids slow string sorts over tens of thousands of rows.
    group = alt if task.resources_ordered else np.zeros_like(alt)
    if sort_by == "time":
        primary = -(table.accelerator_count[rows] * 1000 + table.vcpus[rows])
        keys = (rows, cost, primary, group)
    else:
        keys = (rows, ~spot, cost, group)
    order = np.lexsort(keys)
    rows, spot, alt, cost = rows[order], spot[order], alt[order], cost[order]
    # The same row may satisfy several alternatives: keep its first (best-ranked) occurrence.
    key = rows.astype(np.int64) * 2 + spot
    _, first = np.unique(key, return_index=True)
    if len(first) < len(key):
        keep = np.sort(first)
        rows, spot, alt, cost = rows[keep], spot[keep], alt[keep], cost[keep]
    return Plan(
        task_name=getattr(task, "name", None), num_nodes=num_nodes, table=table.take(rows),
        spot=spot, hourly_cost=cost, alt=alt, sort_by=sort_by, rejected=rejected,
        considered=len(table),
    )


def _summarise(rejected: list[Rejection]) -> list[Rejection]:
    """Merge identical (scope, reason) rejections across alternatives."""
    merged: dict[tuple[str, str], Rejection] = {}
    for r in rejected:
        k = (r.scope, r.reason)
        if k in merged:
            merged[k].count += r.count
        else:
            merged[k] = Rejection(r.scope, r.reason, r.count)
    return list(merged.values())
