"""Cluster records (the laptop's view of every cluster) and usage intervals for cost reports.

Status follows SkyPilot: INIT (being launched, or found abnormal), UP, STOPPED. A cluster row
is written as INIT *before* any cloud call, so a CLI that dies mid-launch leaves a record
that `sky status --refresh` reconciles with the provisioner (resources carry tags).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from skybroker.state import db

INIT, UP, STOPPED = "INIT", "UP", "STOPPED"
CLUSTER_STATUSES = (INIT, UP, STOPPED)


@dataclass
class ClusterRecord:
    name: str
    status: str
    cloud: str | None = None
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    spot: bool = False
    num_nodes: int = 1
    info: dict[str, Any] | None = None
    launched_at: float | None = None
    status_updated_at: float | None = None
    hourly_price: float | None = None
    autostop_minutes: int | None = None
    autostop_down: bool = False
    setup_hash: str | None = None
    last_error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Any) -> ClusterRecord:
        d = dict(row)
        d["spot"] = bool(d["spot"])
        d["autostop_down"] = bool(d["autostop_down"])
        d["info"] = db.loads(d["info"])
        d["metadata"] = db.loads(d["metadata"], {})
        return cls(**d)

    def cluster_info(self):
        """The stored ClusterInfo (None while nothing is launched yet)."""
        from skybroker.clouds.base import ClusterInfo

        return ClusterInfo.from_json(self.info) if self.info else None


_COLUMNS = ("status", "cloud", "region", "zone", "instance_type", "spot", "num_nodes", "info",
            "launched_at", "hourly_price", "autostop_minutes", "autostop_down", "setup_hash",
            "last_error", "metadata")
_JSON = ("info", "metadata")


def get(name: str) -> ClusterRecord | None:
    rows = db.query("SELECT * FROM clusters WHERE name=?", (name,))
    return ClusterRecord.from_row(rows[0]) if rows else None


def list_clusters() -> list[ClusterRecord]:
    return [ClusterRecord.from_row(r) for r in db.query("SELECT * FROM clusters ORDER BY launched_at, name")]


def upsert(name: str, **fields: Any) -> None:
    """Insert or update a cluster row with the given columns (JSON columns as structures)."""
    bad = set(fields) - set(_COLUMNS)
    if bad:
        raise ValueError(f"unknown cluster columns {sorted(bad)}")
    vals = {k: (db.dumps(v) if k in _JSON else (int(v) if isinstance(v, bool) else v))
            for k, v in fields.items()}
    vals["status_updated_at"] = time.time()
    cols = ", ".join(vals)
    marks = ", ".join("?" for _ in vals)
    updates = ", ".join(f"{k}=excluded.{k}" for k in vals)
    with db.transaction() as conn:
        if "status" not in vals:
            if not conn.execute("SELECT 1 FROM clusters WHERE name=?", (name,)).fetchone():
                raise KeyError(name)
            sets = ", ".join(f"{k}=?" for k in vals)
            conn.execute(f"UPDATE clusters SET {sets} WHERE name=?", (*vals.values(), name))
            return
        conn.execute(f"INSERT INTO clusters(name, {cols}) VALUES (?, {marks}) "
                     f"ON CONFLICT(name) DO UPDATE SET {updates}", (name, *vals.values()))


def remove(name: str) -> None:
    with db.transaction() as conn:
        conn.execute("DELETE FROM clusters WHERE name=?", (name,))
        conn.execute("DELETE FROM cluster_jobs WHERE cluster=?", (name,))


# ---- usage intervals: one row per period the cluster was UP (billed) ----


def usage_start(rec: ClusterRecord, at: float | None = None) -> None:
    """Open a billing interval unless one is open already."""
    with db.transaction() as conn:
        if conn.execute("SELECT 1 FROM cluster_usage WHERE cluster=? AND ended_at IS NULL",
                        (rec.name,)).fetchone():
            return
        conn.execute("INSERT INTO cluster_usage(cluster, cloud, region, instance_type, spot, "
                     "num_nodes, hourly_price, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (rec.name, rec.cloud, rec.region, rec.instance_type, int(rec.spot),
                      rec.num_nodes, rec.hourly_price or 0.0, at or time.time()))


def usage_end(name: str, ended_by: str, at: float | None = None) -> None:
    with db.transaction() as conn:
        conn.execute("UPDATE cluster_usage SET ended_at=?, ended_by=? WHERE cluster=? AND ended_at IS NULL",
                     (at or time.time(), ended_by, name))


def usage(name: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM cluster_usage" + (" WHERE cluster=?" if name else "") + " ORDER BY id"
    return [dict(r) for r in db.query(sql, (name,) if name else ())]
