"""The optimizer's output: a ranked plan of placements, plus why candidates were dropped.

A plan for a CPU task can hold tens of thousands of placements (every instance type that fits,
in every zone, spot and on-demand). It is kept columnar (rows of an OfferTable plus per-row
arrays) and `Placement` objects are built only for the rows someone looks at, so planning and
the first failover attempt stay in the millisecond range.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skybroker.catalog import Offer, OfferTable


@dataclass(frozen=True)
class Placement:
    """One way to run the task: an offer, spot or on-demand, on `num_nodes` nodes."""

    offer: Offer
    spot: bool
    num_nodes: int
    hourly_cost: float  # for all nodes, $/h
    resources_index: int = 0  # which of the task's resource alternatives it satisfies

    @property
    def cloud(self) -> str:
        return self.offer.cloud

    @property
    def region(self) -> str:
        return self.offer.region

    @property
    def zone(self) -> str | None:
        return self.offer.zone

    @property
    def instance_type(self) -> str:
        return self.offer.instance_type

    @property
    def infra(self) -> str:
        """SkyPilot-style location: cloud/region[/zone]."""
        parts = [self.offer.cloud, self.offer.region] + ([self.offer.zone] if self.offer.zone else [])
        return "/".join(parts)

    def describe(self) -> str:
        kind = "spot" if self.spot else "on-demand"
        nodes = f"{self.num_nodes}x " if self.num_nodes > 1 else ""
        return f"{nodes}{self.instance_type} ({kind}) in {self.infra}"

    def to_json(self) -> dict[str, Any]:
        o = self.offer
        return {
            "cloud": o.cloud,
            "region": o.region,
            "zone": o.zone,
            "instance_type": o.instance_type,
            "spot": self.spot,
            "num_nodes": self.num_nodes,
            "hourly_cost": round(self.hourly_cost, 6),
            "vcpus": o.vcpus,
            "memory_gib": o.memory_gib,
            "accelerators": {o.accelerator_name: o.accelerator_count} if o.accelerator_name else None,
            "resources_index": self.resources_index,
        }


@dataclass
class Rejection:
    """Why a group of candidates was dropped, e.g. ('aws', 'no spot price in region x')."""

    scope: str  # cloud name, or 'all'
    reason: str
    count: int = 0  # how many offers this step removed

    def __str__(self) -> str:
        n = f" ({self.count:,} offers)" if self.count else ""
        return f"{self.scope}: {self.reason}{n}"


class Placements(Sequence):
    """A lazy, ranked sequence of placements over columnar rows."""

    def __init__(self, table: OfferTable, spot: np.ndarray, cost: np.ndarray,
                 alt: np.ndarray, num_nodes: int) -> None:
        self._table, self._spot, self._cost, self._alt = table, spot, cost, alt
        self._num_nodes = num_nodes

    def __len__(self) -> int:
        return len(self._cost)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return Placement(self._table.offer(i), bool(self._spot[i]), self._num_nodes,
                         float(self._cost[i]), int(self._alt[i]))

    def __iter__(self) -> Iterator[Placement]:
        return (self[i] for i in range(len(self)))


@dataclass
class Plan:
    """Every feasible placement for a task, best first; the order is the failover order."""

    task_name: str | None
    num_nodes: int
    table: OfferTable  # one row per placement, in rank order
    spot: np.ndarray  # bool per row
    hourly_cost: np.ndarray  # $/h for all nodes, per row
    alt: np.ndarray  # resources alternative index per row
    sort_by: str = "cost"
    rejected: list[Rejection] = field(default_factory=list)
    considered: int = 0  # offers looked at (before filtering)

    @property
    def placements(self) -> Placements:
        return Placements(self.table, self.spot, self.hourly_cost, self.alt, self.num_nodes)

    def __len__(self) -> int:
        return len(self.hourly_cost)

    @property
    def best(self) -> Placement:
        return self.placements[0]

    def best_per_cloud(self) -> dict[str, list[int]]:
        """Row indices of the cheapest placements per cloud (for the dry-run table)."""
        out: dict[str, list[int]] = {}
        clouds = self.table.cloud
        for cloud in dict.fromkeys(clouds.tolist()):
            out[cloud] = np.flatnonzero(clouds == cloud).tolist()
        return out

    def why_not(self, cloud: str | None = None) -> list[str]:
        """The rejection reasons that concern `cloud` (or all), for "why not X?"."""
        return [str(r) for r in self.rejected if cloud is None or r.scope in (cloud, "all")]

    def to_json(self, limit: int | None = None) -> list[dict[str, Any]]:
        n = len(self) if limit is None else min(limit, len(self))
        return [self.placements[i].to_json() for i in range(n)]
