"""Real optimizer placements for failover tests, without a catalog row behind them."""

from __future__ import annotations

from skybroker.catalog import Offer
from skybroker.optimizer.plan import Placement


def placement(cloud: str, region: str, zone: str | None, instance_type: str, spot: bool = True,
              nodes: int = 1, hourly_cost: float = 1.0) -> Placement:
    """A Placement on an Offer with only the location and shape the failover loop reads."""
    offer = Offer(cloud, region, zone, instance_type, None, None, None, None, None, "x86_64",
                  None, None)
    return Placement(offer, spot, nodes, hourly_cost)
