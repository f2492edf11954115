"""Writing a refreshed catalog so that a reader never sees half of it.

Why atomic: `sky launch` may load the catalog while a refresh runs, and a refresh may die
(Ctrl-C, network, disk full). The CSV is written to a temp file in the same directory,
fsynced, then `os.replace`d over the old one (and the directory fsynced), so a reader sees
either the old catalog or the new one, never a mix. SOURCES.json gets the same treatment.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

from skybroker.catalog.rules import format_cell, row_sort_key
from skybroker.catalog.table import CSV_COLUMNS
from skybroker.errors import CatalogError

Row = dict[str, object]


def _atomic_write(path: Path, write) -> None:
    """Call `write(fh)` on a temp file beside `path`, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # make the rename itself durable (not on every OS)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_rows(rows: list[Row], cloud: str) -> None:
    """Refuse output that would make things worse than the catalog it replaces."""
    if not rows:
        raise CatalogError(f"{cloud}: the refresh produced no offers; the old catalog is kept.",
                           hint="check the region filter and that the account can list "
                                "instance types and prices")
    priced = sum(1 for r in rows if _num(r.get("price")) or _num(r.get("spot_price")))
    if priced == 0:
        raise CatalogError(f"{cloud}: no offer has a price; the old catalog is kept.",
                           hint="the price API answered but matched nothing: check the "
                                "endpoint and filters")
    for r in rows:
        missing = [c for c in ("instance_type", "region") if not r.get(c)]
        if missing:
            raise CatalogError(f"{cloud}: an offer lacks {', '.join(missing)}: {r}")


def _num(x: object) -> bool:
    return isinstance(x, (int, float)) and not math.isnan(float(x)) and float(x) > 0


def write_catalog(rows: Iterable[Row], path: Path) -> int:
    """Rows in the shipped catalogs' schema and order, written atomically; returns the count."""
    ordered = sorted(rows, key=row_sort_key)

    def write(fh) -> None:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for r in ordered:
            w.writerow([format_cell(r.get(c)) for c in CSV_COLUMNS])

    _atomic_write(path, write)
    return len(ordered)


def record_provenance(directory: Path, cloud: str, source: str, rows: int, notes: dict,
                      now: dt.datetime | None = None) -> dict:
    """Update `<directory>/SOURCES.json` for `cloud` (what `catalog_info` reads)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    path = directory / "SOURCES.json"
    try:
        sources = json.loads(path.read_text()) if path.is_file() else {}
        if not isinstance(sources, dict):
            sources = {}
    except (OSError, ValueError):
        sources = {}
    entry = {"source": source, "date": now.date().isoformat(),
             "refreshed_at": now.replace(microsecond=0).isoformat(), "rows": rows,
             "notes": notes}
    sources[cloud] = entry
    _atomic_write(path, lambda fh: fh.write(json.dumps(sources, indent=2, sort_keys=True) + "\n"))
    return entry


@contextlib.contextmanager
def _locked(directory: Path):
    """Serialise installs: SOURCES.json is read-modify-write, shared by every cloud."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".refresh.lock", "a") as fh:
        try:
            import fcntl
        except ImportError:  # not POSIX: best effort
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def install(cloud: str, rows: list[Row], source: str, notes: dict, directory: Path) -> Path:
    """Validate, write `<directory>/<cloud>.csv` atomically, then record where it came from."""
    check_rows(rows, cloud)
    path = directory / f"{cloud}.csv"
    with _locked(directory):
        n = write_catalog(rows, path)
        record_provenance(directory, cloud, source, n, notes)
    return path


def merge_partial(old: Path | None, fresh: list[Row], regions: list[str] | None,
                  types: list[str] | None) -> tuple[list[Row], int]:
    """Fresh rows plus the old catalog's rows outside the refreshed (regions x types) scope.

    Why: `--region us-east-1` must update that region, not delete every other one. Returns
    (rows, how many old rows were kept).
    """
    from fnmatch import fnmatchcase

    if old is None or not old.is_file() or (not regions and not types):
        return fresh, 0

    def in_scope(region: str, itype: str) -> bool:
        return ((not regions or region in regions)
                and (not types or any(fnmatchcase(itype, p) for p in types)))

    kept: list[Row] = []
    with open(old, newline="") as fh:
        for r in csv.DictReader(fh):
            if in_scope(r.get("region", ""), r.get("instance_type", "")):
                continue
            # Cells stay the old file's text (written back as is); only the sort key's
            # count is numeric.
            row: Row = {c: (r.get(c) or "").strip() for c in CSV_COLUMNS}
            row["accelerator_count"] = _float(str(row["accelerator_count"]))
            kept.append(row)
    return fresh + kept, len(kept)


def _float(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
