"""Managed-job rows (component "jobs" of the state DB): everything the controller needs to resume.

Why a row holds the whole run state (the tick model, the policy memory, the pending action):
the controller may be killed with -9 at any moment. Each decision is committed together with
the new model state and the action it implies *before* acting, so a restarted controller redoes
an unfinished action (idempotently) instead of deciding twice or forgetting a cluster.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from skybroker.state import db

PENDING, STARTING, RUNNING, RECOVERING = "PENDING", "STARTING", "RUNNING", "RECOVERING"
SUCCEEDED, FAILED, FAILED_SETUP = "SUCCEEDED", "FAILED", "FAILED_SETUP"
FAILED_NO_RESOURCE, FAILED_CONTROLLER = "FAILED_NO_RESOURCE", "FAILED_CONTROLLER"
CANCELLING, CANCELLED = "CANCELLING", "CANCELLED"
STATUSES = (PENDING, STARTING, RUNNING, RECOVERING, SUCCEEDED, FAILED, FAILED_SETUP,
            FAILED_NO_RESOURCE, FAILED_CONTROLLER, CANCELLING, CANCELLED)
TERMINAL = (SUCCEEDED, FAILED, FAILED_SETUP, FAILED_NO_RESOURCE, FAILED_CONTROLLER, CANCELLED)

JOBS_MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE managed_jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT,
            status TEXT NOT NULL,
            submitted_at REAL NOT NULL, started_at REAL, ended_at REAL, updated_at REAL,
            task TEXT NOT NULL,          -- JSON: the task's YAML config
            params TEXT NOT NULL,        -- JSON: policy, deadline/duration/overhead (s), clock
            model TEXT NOT NULL,         -- JSON: the tick model (work, overhead left, prev, ...)
            cluster TEXT,                -- the job's current cluster (at most one)
            cluster_info TEXT,           -- JSON: its ClusterInfo
            placement TEXT,              -- JSON: where it runs (cloud/region/zone/type/spot/$)
            cluster_job_id INTEGER,      -- the task's job id on that cluster
            pending TEXT,                -- JSON: the action decided but not yet done
            runs INTEGER NOT NULL DEFAULT 0,
            error_restarts INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            failure_reason TEXT
        )""",
        "CREATE INDEX managed_jobs_status ON managed_jobs(status)",
    ],
]
db.register("jobs", JOBS_MIGRATIONS)

_JSON = ("task", "params", "model", "cluster_info", "placement", "pending")
_COLUMNS = ("name", "status", "submitted_at", "started_at", "ended_at", "task", "params", "model",
            "cluster", "cluster_info", "placement", "cluster_job_id", "pending", "runs",
            "error_restarts", "cancel_requested", "failure_reason")
_ready: set[str] = set()
# The controller writes from a pool of threads: queue them on a lock instead of on SQLite's
# busy handler, which sleeps in growing steps and made each write cost milliseconds.
_write_lock = threading.Lock()


@contextlib.contextmanager
def _write() -> Iterator[Any]:
    with _write_lock, db.transaction() as conn:
        yield conn


def _ensure() -> None:
    """Apply the jobs migration even when this thread's connection predates its registration."""
    import os

    from skybroker.config import HOME_ENV

    key = os.environ.get(HOME_ENV, "")  # cheap per-call key; the path is resolved once
    if key not in _ready:
        db.connect().close()
        _ready.add(key)


@dataclass
class ManagedJob:
    id: int
    name: str | None
    status: str
    submitted_at: float
    task: dict[str, Any]
    params: dict[str, Any]
    model: dict[str, Any]
    started_at: float | None = None
    ended_at: float | None = None
    updated_at: float | None = None
    cluster: str | None = None
    cluster_info: dict[str, Any] | None = None
    placement: dict[str, Any] | None = None
    cluster_job_id: int | None = None
    pending: dict[str, Any] | None = None
    runs: int = 0
    error_restarts: int = 0
    cancel_requested: bool = False
    failure_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Any) -> ManagedJob:
        d = dict(row)
        for k in _JSON:
            d[k] = db.loads(d[k], {} if k in ("task", "params", "model") else None)
        d["cancel_requested"] = bool(d["cancel_requested"])
        return cls(**d)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def _vals(fields: dict[str, Any]) -> dict[str, Any]:
    bad = set(fields) - set(_COLUMNS)
    if bad:
        raise ValueError(f"unknown managed_jobs columns {sorted(bad)}")
    return {k: (db.dumps(v) if k in _JSON else (int(v) if isinstance(v, bool) else v))
            for k, v in fields.items()}


def add(name: str | None, task: dict[str, Any], params: dict[str, Any],
        model: dict[str, Any]) -> int:
    _ensure()
    now = time.time()
    with _write() as conn:
        cur = conn.execute(
            "INSERT INTO managed_jobs(name, status, submitted_at, updated_at, task, params, model) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, PENDING, now, now, db.dumps(task), db.dumps(params), db.dumps(model)))
        job_id = int(cur.lastrowid)
        _event(conn, job_id, "jobs.submitted", f"submitted ({params.get('policy')})", None)
    return job_id


def update(job_id: int, event: tuple[str, str, Any] | None = None, **fields: Any) -> None:
    """Update columns and (optionally) append an event, in one transaction."""
    _ensure()
    vals = _vals(fields)
    vals["updated_at"] = time.time()
    sets = ", ".join(f"{k}=?" for k in vals)
    with _write() as conn:
        conn.execute(f"UPDATE managed_jobs SET {sets} WHERE id=?", (*vals.values(), job_id))
        if event is not None:
            _event(conn, job_id, *event)


def _event(conn: Any, job_id: int, kind: str, message: str, data: Any) -> None:
    conn.execute("INSERT INTO events(time, managed_job_id, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                 (time.time(), job_id, kind, message, db.dumps(data)))


def add_event(job_id: int, kind: str, message: str = "", data: Any = None) -> None:
    _ensure()
    with _write() as conn:
        _event(conn, job_id, kind, message, data)


def get(job_id: int) -> ManagedJob | None:
    _ensure()
    rows = db.query("SELECT * FROM managed_jobs WHERE id=?", (job_id,))
    return ManagedJob.from_row(rows[0]) if rows else None


def list_jobs(active_only: bool = False) -> list[ManagedJob]:
    _ensure()
    sql = "SELECT * FROM managed_jobs"
    params: tuple = ()
    if active_only:
        sql += f" WHERE status NOT IN ({', '.join('?' for _ in TERMINAL)})"
        params = TERMINAL
    return [ManagedJob.from_row(r) for r in db.query(sql + " ORDER BY id", params)]


def find(name_or_id: str | int) -> list[ManagedJob]:
    """Jobs by id, or by name (several jobs may share a name)."""
    _ensure()
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        j = get(int(name_or_id))
        return [j] if j else []
    rows = db.query("SELECT * FROM managed_jobs WHERE name=? ORDER BY id", (str(name_or_id),))
    return [ManagedJob.from_row(r) for r in rows]


def decisions(job_id: int) -> list[dict[str, Any]]:
    """The job's decision events in order (one per decision point)."""
    _ensure()
    rows = db.query("SELECT time, data FROM events WHERE managed_job_id=? AND kind='jobs.decision' "
                    "ORDER BY id", (job_id,))
    return [db.loads(r["data"], {}) | {"time": r["time"]} for r in rows]


def events(job_id: int, limit: int = 1000) -> list[dict[str, Any]]:
    _ensure()
    rows = db.query("SELECT * FROM events WHERE managed_job_id=? ORDER BY id DESC LIMIT ?",
                    (job_id, limit))
    return [dict(r) | {"data": db.loads(r["data"])} for r in rows][::-1]
