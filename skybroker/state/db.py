"""The broker's SQLite database: one file, WAL, forward-only migrations per component.

Why components: the cluster layer (this package) and the managed-job controller (issue 6) each
own their tables and migrations, without editing one shared list. A component registers an
ordered list of migration steps (each a list of SQL statements); `connect()` applies the
missing ones inside one transaction, so a concurrent CLI either sees the old schema or the new.
Columns that hold structures are JSON text (never pickles): they survive version changes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DB_FILE = "state.db"
BUSY_TIMEOUT_MS = 15_000

# component -> ordered migration steps; step i (0-based) brings the component to version i+1.
MIGRATIONS: dict[str, list[list[str]]] = {}
_applied: set[tuple[str, str, int]] = set()
_lock = threading.Lock()


def register(component: str, steps: list[list[str]]) -> None:
    """Declare a component's migrations (call at import time of the owning module)."""
    MIGRATIONS[component] = steps


def db_path() -> Path:
    from skybroker.config import home

    return home() / DB_FILE


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    for component, steps in MIGRATIONS.items():
        key = (str(path), component, len(steps))
        if key in _applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                         "component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version WHERE component=?",
                               (component,)).fetchone()
            current = row[0] if row else 0
            if current > len(steps):
                from skybroker.errors import SkyError

                raise SkyError(f"{path}: schema of {component!r} is version {current}, newer than "
                               f"this skybroker knows ({len(steps)}); upgrade skybroker.")
            for step in steps[current:]:
                for sql in step:
                    conn.execute(sql)
            conn.execute("INSERT INTO schema_version(component, version) VALUES (?, ?) "
                         "ON CONFLICT(component) DO UPDATE SET version=excluded.version",
                         (component, len(steps)))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        with _lock:
            _applied.add(key)


def connect() -> sqlite3.Connection:
    """A new connection to the state DB with every registered migration applied."""
    from skybroker.state import schema  # noqa: F401  (registers the core migrations)

    path = db_path()
    conn = _open(path)
    _migrate(conn, path)
    return conn


_local = threading.local()


def _cached() -> sqlite3.Connection:
    """This thread's connection to the current home's DB (opening costs a WAL checkpoint)."""
    path = str(db_path())
    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    conn = conns.get(path)
    if conn is None:
        conn = conns[path] = connect()
    return conn


@contextlib.contextmanager
def transaction() -> Iterator[sqlite3.Connection]:
    """A write transaction (BEGIN IMMEDIATE: writers queue on the busy timeout, never fail)."""
    conn = _cached()
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def query(sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
    return _cached().execute(sql, params).fetchall()


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def loads(text: str | None, default: Any = None) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default
