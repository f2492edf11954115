"""Persistent state: SQLite under the broker's home (see `db` for migrations and locking)."""
