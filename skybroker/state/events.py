"""An append-only log of what happened when: the answer to "why is my cluster in this state?"."""

from __future__ import annotations

import time
from typing import Any

from skybroker.state import db


def add(kind: str, message: str = "", *, cluster: str | None = None, job_id: int | None = None,
        managed_job_id: int | None = None, data: Any = None) -> None:
    with db.transaction() as conn:
        conn.execute("INSERT INTO events(time, cluster, job_id, managed_job_id, kind, message, data) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (time.time(), cluster, job_id, managed_job_id, kind, message, db.dumps(data)))


def list_events(cluster: str | None = None, managed_job_id: int | None = None,
                limit: int = 200) -> list[dict[str, Any]]:
    where, params = [], []
    if cluster is not None:
        where.append("cluster=?")
        params.append(cluster)
    if managed_job_id is not None:
        where.append("managed_job_id=?")
        params.append(managed_job_id)
    sql = "SELECT * FROM events" + (f" WHERE {' AND '.join(where)}" if where else "")
    sql += " ORDER BY id DESC LIMIT ?"
    rows = db.query(sql, (*params, limit))
    out = [dict(r) | {"data": db.loads(r["data"])} for r in rows]
    return out[::-1]
