"""The cluster layer's tables (component "core"). Append steps; never edit a shipped one."""

from __future__ import annotations

from skybroker.state.db import register

CORE_MIGRATIONS: list[list[str]] = [
    # v1: clusters, their jobs, usage intervals (for cost-report) and events.
    [
        """CREATE TABLE clusters (
            name TEXT PRIMARY KEY,
            status TEXT NOT NULL,              -- INIT / UP / STOPPED
            cloud TEXT, region TEXT, zone TEXT, instance_type TEXT,
            spot INTEGER NOT NULL DEFAULT 0,
            num_nodes INTEGER NOT NULL DEFAULT 1,
            info TEXT,                         -- ClusterInfo JSON
            launched_at REAL, status_updated_at REAL,
            hourly_price REAL,                 -- whole cluster, $/h, at launch
            autostop_minutes INTEGER,          -- NULL or <0: off
            autostop_down INTEGER NOT NULL DEFAULT 0,
            setup_hash TEXT,
            last_error TEXT,
            metadata TEXT                      -- JSON: free-form facts (task name, resources)
        )""",
        """CREATE TABLE cluster_jobs (
            cluster TEXT NOT NULL,
            job_id INTEGER NOT NULL,
            name TEXT, status TEXT NOT NULL,
            submitted_at REAL, started_at REAL, ended_at REAL,
            returncode INTEGER, log_dir TEXT,
            pids TEXT,                         -- JSON {rank: pgid}
            PRIMARY KEY (cluster, job_id)
        )""",
        """CREATE TABLE cluster_usage (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            cluster TEXT NOT NULL, cloud TEXT, region TEXT, instance_type TEXT,
            spot INTEGER, num_nodes INTEGER, hourly_price REAL,
            started_at REAL NOT NULL, ended_at REAL,
            ended_by TEXT                      -- stop / down / autostop / lost
        )""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,
            cluster TEXT, job_id INTEGER, managed_job_id INTEGER,
            kind TEXT NOT NULL, message TEXT, data TEXT
        )""",
        "CREATE INDEX events_cluster ON events(cluster, time)",
        "CREATE INDEX events_managed ON events(managed_job_id, time)",
        "CREATE INDEX usage_cluster ON cluster_usage(cluster)",
    ],
    # v2: which hosts of which SSH pool each cluster holds (a host serves one cluster at a time).
    [
        """CREATE TABLE ssh_claims (
            pool TEXT NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL,
            cluster TEXT NOT NULL, rank INTEGER NOT NULL, claimed_at REAL NOT NULL,
            PRIMARY KEY (pool, host, port)
        )""",
        "CREATE INDEX ssh_claims_cluster ON ssh_claims(cluster)",
    ],
]

register("core", CORE_MIGRATIONS)
