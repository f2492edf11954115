"""The laptop's mirror of each cluster's job queue.

The queue itself lives on the cluster (the head node's agent owns it, so jobs run and finish
while the laptop sleeps); these rows are refreshed from it whenever the CLI talks to the
cluster, and keep `sky queue` / `sky logs` answerable when the cluster is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skybroker.state import db

PENDING, SETTING_UP, RUNNING = "PENDING", "SETTING_UP", "RUNNING"
SUCCEEDED, FAILED, FAILED_SETUP, CANCELLED = "SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED"
JOB_STATUSES = (PENDING, SETTING_UP, RUNNING, SUCCEEDED, FAILED, FAILED_SETUP, CANCELLED)
TERMINAL = (SUCCEEDED, FAILED, FAILED_SETUP, CANCELLED)


@dataclass
class JobRecord:
    cluster: str
    job_id: int
    name: str | None
    status: str
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    returncode: int | None = None
    log_dir: str | None = None
    pids: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Any) -> JobRecord:
        d = dict(row)
        d["pids"] = db.loads(d["pids"], {})
        return cls(**d)


def upsert(rec: JobRecord) -> None:
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO cluster_jobs(cluster, job_id, name, status, submitted_at, started_at, "
            "ended_at, returncode, log_dir, pids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(cluster, job_id) DO UPDATE SET name=excluded.name, status=excluded.status, "
            "submitted_at=excluded.submitted_at, started_at=excluded.started_at, "
            "ended_at=excluded.ended_at, returncode=excluded.returncode, "
            "log_dir=excluded.log_dir, pids=excluded.pids",
            (rec.cluster, rec.job_id, rec.name, rec.status, rec.submitted_at, rec.started_at,
             rec.ended_at, rec.returncode, rec.log_dir, db.dumps(rec.pids)))


def get(cluster: str, job_id: int) -> JobRecord | None:
    rows = db.query("SELECT * FROM cluster_jobs WHERE cluster=? AND job_id=?", (cluster, job_id))
    return JobRecord.from_row(rows[0]) if rows else None


def list_jobs(cluster: str) -> list[JobRecord]:
    rows = db.query("SELECT * FROM cluster_jobs WHERE cluster=? ORDER BY job_id", (cluster,))
    return [JobRecord.from_row(r) for r in rows]


def fail_unfinished(cluster: str, status: str = FAILED) -> int:
    """Mark every non-terminal job of a cluster (e.g. one that was lost) as `status`."""
    import time

    marks = ", ".join("?" for _ in TERMINAL)
    with db.transaction() as conn:
        cur = conn.execute(f"UPDATE cluster_jobs SET status=?, ended_at=COALESCE(ended_at, ?) "
                           f"WHERE cluster=? AND status NOT IN ({marks})",
                           (status, time.time(), cluster, *TERMINAL))
        return cur.rowcount
