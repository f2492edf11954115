"""The state DB: forward migrations per component, JSON columns, concurrent writers."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from skybroker.errors import SkyError
from skybroker.state import clusters as cstate
from skybroker.state import db, events
from skybroker.state import jobs as jstate


def test_schema_versions_and_component_migrations(sky_home):
    conn = db.connect()
    versions = dict(conn.execute("SELECT component, version FROM schema_version").fetchall())
    assert versions["core"] == len(db.MIGRATIONS["core"])
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # A later component (e.g. managed jobs) adds its own tables without touching "core".
    db.register("test_component", [["CREATE TABLE t1 (x INTEGER)"], ["ALTER TABLE t1 ADD COLUMN y TEXT"]])
    try:
        conn = db.connect()
        conn.execute("INSERT INTO t1(x, y) VALUES (1, 'a')")
        assert dict(conn.execute("SELECT component, version FROM schema_version").fetchall())[
            "test_component"] == 2
        # A step added later is applied once, on the next connect.
        db.MIGRATIONS["test_component"].append(["ALTER TABLE t1 ADD COLUMN z REAL"])
        db.connect().execute("INSERT INTO t1(x, y, z) VALUES (2, 'b', 1.5)")
    finally:
        db.MIGRATIONS.pop("test_component")


def test_newer_schema_is_refused(sky_home):
    db.connect().execute("UPDATE schema_version SET version=999 WHERE component='core'")
    db._applied.clear()
    with pytest.raises(SkyError, match="newer than this skybroker"):
        db.connect()


def test_old_database_is_migrated_forward(sky_home):
    path = sky_home / "state.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    from skybroker.state.schema import CORE_MIGRATIONS

    for sql in CORE_MIGRATIONS[0]:
        conn.execute(sql)
    conn.execute("INSERT INTO schema_version VALUES ('core', 1)")
    conn.execute("INSERT INTO clusters(name, status) VALUES ('old', 'UP')")
    conn.commit()
    conn.close()
    db._applied.clear()
    assert cstate.get("old").status == "UP"
    assert db.query("SELECT count(*) FROM ssh_claims")[0][0] == 0  # v2 applied


def test_cluster_records_are_json_not_pickles(sky_home):
    cstate.upsert("c", status="INIT", cloud="local", info={"nodes": [{"rank": 0}]}, spot=True,
                  metadata={"k": [1, 2]})
    raw = db.query("SELECT info, metadata, spot FROM clusters WHERE name='c'")[0]
    assert raw["info"].startswith("{") and raw["metadata"] == '{"k": [1, 2]}' and raw["spot"] == 1
    rec = cstate.get("c")
    assert rec.spot is True and rec.metadata == {"k": [1, 2]}
    with pytest.raises(ValueError, match="unknown cluster columns"):
        cstate.upsert("c", bogus=1)
    with pytest.raises(KeyError):
        cstate.upsert("missing", zone="x")


def test_usage_intervals_drive_cost(sky_home):
    from skybroker.core.lifecycle import cost_report

    cstate.upsert("c", status="UP", cloud="local", region="local", instance_type="local.small",
                  hourly_price=2.0, num_nodes=1)
    rec = cstate.get("c")
    cstate.usage_start(rec, at=1000.0)
    cstate.usage_start(rec, at=1500.0)  # already open: ignored
    cstate.usage_end("c", "stop", at=1000.0 + 1800)
    cstate.usage_start(rec, at=10_000.0)
    [row] = cost_report(now=10_000.0 + 3600)
    assert row["hours"] == pytest.approx(1.5) and row["cost"] == pytest.approx(3.0)


def _writer(home: str, i: int) -> None:
    import os
    import threading

    os.environ["SKYBROKER_HOME"] = home
    db._local = threading.local()  # never share the parent's sqlite handle across fork
    from skybroker.state import clusters, events, jobs

    for j in range(25):
        clusters.upsert(f"p{i}", status="UP", cloud="local", num_nodes=j)
        jobs.upsert(jobs.JobRecord(f"p{i}", j, "n", "PENDING"))
        events.add("test", f"{i}-{j}", cluster=f"p{i}")


def test_concurrent_processes_do_not_corrupt(sky_home):
    db.connect()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(sky_home), i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(cstate.list_clusters()) == 4
    assert all(len(jstate.list_jobs(f"p{i}")) == 25 for i in range(4))
    assert len(events.list_events(limit=1000)) == 100
    assert db.query("PRAGMA integrity_check")[0][0] == "ok"


def test_fail_unfinished_marks_only_active_jobs(sky_home):
    for i, st in enumerate(["PENDING", "RUNNING", "SUCCEEDED"]):
        jstate.upsert(jstate.JobRecord("c", i, None, st))
    assert jstate.fail_unfinished("c") == 2
    assert [j.status for j in jstate.list_jobs("c")] == ["FAILED", "FAILED", "SUCCEEDED"]
