"""SSH pools from the config, host claims in the state DB, and plan entries for the failover loop.

    ssh:
      pools:
        lab:                                  # the pool name is the cluster's "region"
          user: ubuntu                        # default user (per host overridable)
          identity_file: ~/.ssh/id_ed25519    # one key per pool (the head uses it for workers)
          hosts: [10.0.0.1, "10.0.0.2:2222", {address: 10.0.0.3, port: 22, user: root}]
          root_dir: ~/.skybroker              # where node directories go on each host
          strict_host_keys: false             # true: never record keys on first contact
          known_hosts: <home>/ssh/known_hosts.lab   # recorded host keys (default)
          hourly_price: 0.0                   # for cost reports
          keepalive: {interval: 3, count: 3}  # head->worker: a silent worker is lost after ~9 s

A host serves one cluster at a time: `launch` claims free hosts in one transaction and raises
CapacityError(scope="region") when the pool has too few, so the failover loop moves on to the
next pool.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from skybroker.errors import CapacityError, SkyError


@dataclass(frozen=True)
class Host:
    address: str
    port: int = 22
    user: str = "root"


@dataclass
class Pool:
    name: str
    hosts: list[Host]
    identity_file: str
    known_hosts: str
    root_dir: str = "~/.skybroker"
    strict_host_keys: bool = False
    hourly_price: float = 0.0
    keepalive: tuple[int, int] = (3, 3)


def _host(entry: Any, user: str, pool: str) -> Host:
    if isinstance(entry, dict):
        addr = entry.get("address") or entry.get("host")
        if not addr:
            raise SkyError(f"ssh pool {pool}: a host entry needs `address`: {entry!r}")
        return Host(str(addr), int(entry.get("port", 22)), str(entry.get("user", user)))
    text = str(entry)
    if text.count(":") == 1:
        addr, port = text.split(":")
        return Host(addr, int(port), user)
    return Host(text, 22, user)


def load_pools() -> dict[str, Pool]:
    from skybroker.config import home, load_config

    raw = ((load_config().get("ssh") or {}).get("pools")) or {}
    pools = {}
    for name, cfg in raw.items():
        cfg = cfg or {}
        user = str(cfg.get("user", "root"))
        if not cfg.get("identity_file"):
            raise SkyError(f"ssh pool {name}: `identity_file` is required in {home() / 'config.yaml'}")
        pools[str(name)] = Pool(
            name=str(name), hosts=[_host(h, user, name) for h in cfg.get("hosts") or []],
            identity_file=str(cfg["identity_file"]),
            known_hosts=str(cfg.get("known_hosts") or home() / "ssh" / f"known_hosts.{name}"),
            root_dir=str(cfg.get("root_dir", "~/.skybroker")),
            strict_host_keys=bool(cfg.get("strict_host_keys", False)),
            hourly_price=float(cfg.get("hourly_price", 0.0)),
            keepalive=(int((cfg.get("keepalive") or {}).get("interval", 3)),
                       int((cfg.get("keepalive") or {}).get("count", 3))))
    return pools


def get_pool(name: str) -> Pool:
    pools = load_pools()
    if name not in pools:
        from skybroker.utils.registry import did_you_mean

        raise SkyError(f"No ssh pool {name!r} in the config.{did_you_mean(name, pools)}",
                       hint="Define it under `ssh: pools:` in <home>/config.yaml (docs/clusters.md).")
    return pools[name]


# ---- claims ----


def claim(pool: Pool, cluster: str, n: int) -> list[Host]:
    """Hosts for `cluster` (its existing claims first), claimed atomically."""
    from skybroker.state import db

    with db.transaction() as conn:
        rows = conn.execute("SELECT host, port, cluster, rank FROM ssh_claims WHERE pool=?",
                            (pool.name,)).fetchall()
        mine = {(r["host"], r["port"]): r["rank"] for r in rows if r["cluster"] == cluster}
        taken = {(r["host"], r["port"]) for r in rows}
        held = sorted((h for h in pool.hosts if (h.address, h.port) in mine),
                      key=lambda h: mine[(h.address, h.port)])
        free = [h for h in pool.hosts if (h.address, h.port) not in taken]
        if len(held) + len(free) < n:
            raise CapacityError(f"ssh pool {pool.name} has {len(free)} free host(s) of "
                                f"{len(pool.hosts)}; {n - len(held)} more needed", "region")
        chosen = (held + free)[:n]
        for rank, h in enumerate(chosen):
            conn.execute("INSERT INTO ssh_claims(pool, host, port, cluster, rank, claimed_at) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(pool, host, port) DO UPDATE SET "
                         "rank=excluded.rank", (pool.name, h.address, h.port, cluster, rank, time.time()))
        return chosen


def claims_of(cluster: str) -> list[tuple[str, Host]]:
    from skybroker.state import db

    rows = db.query("SELECT pool, host, port, rank FROM ssh_claims WHERE cluster=? ORDER BY rank",
                    (cluster,))
    return [(r["pool"], Host(r["host"], r["port"])) for r in rows]


def release(cluster: str) -> None:
    from skybroker.state import db

    with db.transaction() as conn:
        conn.execute("DELETE FROM ssh_claims WHERE cluster=?", (cluster,))


# ---- plan entries (the optimizer plans catalog clouds; ssh pools are planned here) ----


@dataclass(frozen=True)
class SSHOffer:
    cloud: str
    region: str
    zone: str | None = None
    instance_type: str = "ssh-host"
    vcpus: float | None = None
    memory_gib: float | None = None
    accelerator_name: str | None = None
    accelerator_count: float | None = None
    price: float | None = 0.0
    spot_price: float | None = None


@dataclass(frozen=True)
class SSHPlacement:
    offer: SSHOffer
    spot: bool = False
    num_nodes: int = 1
    hourly_cost: float = 0.0
    resources_index: int = 0
    notes: list[str] = field(default_factory=list, compare=False)

    def describe(self) -> str:
        nodes = f"{self.num_nodes}x " if self.num_nodes > 1 else ""
        return f"{nodes}host(s) of ssh pool {self.offer.region}"


def ssh_placements(task: Any) -> list[SSHPlacement]:
    """One placement per pool (the task's region pin selects a pool), in config order."""
    pools = load_pools()
    if not pools:
        raise SkyError("No ssh pools are configured.",
                       hint="Add `ssh: pools: {NAME: {hosts: [...], user: ..., identity_file: ...}}` "
                            "to <home>/config.yaml (see docs/clusters.md).")
    n = int(getattr(task, "num_nodes", 1) or 1)
    out = []
    for i, res in enumerate(task.resources or [None]):
        if getattr(res, "use_spot", False):
            raise SkyError("ssh pools have no spot market; drop use_spot.")
        want = getattr(res, "region", None)
        if want:
            get_pool(want)
        for pool in pools.values():
            if want and pool.name != want:
                continue
            out.append(SSHPlacement(SSHOffer("ssh", pool.name), False, n, pool.hourly_price * n, i))
    return out
