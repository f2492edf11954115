"""`sky catalog refresh`: rebuild a cloud's offer table from the cloud's own APIs.

Why: shipped catalogs go stale. A refresh writes `<home>/catalogs/<cloud>.csv` (same schema
as the shipped ones, which stay the fallback) atomically, plus provenance in SOURCES.json,
so `sky show-gpus` and `sky launch --dryrun` say where prices came from and how old they are.
A refresh that fails for any reason leaves the previous catalog untouched. Cloud SDKs are
imported inside each cloud's module, only when that cloud is refreshed.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skybroker.catalog.refresh.common import Progress, explain
from skybroker.errors import CatalogError

CLOUDS = ("aws", "gcp", "azure")


@dataclass(frozen=True)
class RefreshResult:
    cloud: str
    path: Path
    rows: int
    source: str
    seconds: float
    notes: dict[str, Any] = field(default_factory=dict)


def _endpoint(cloud: str) -> str | None:
    from skybroker.clouds import clients

    try:
        if cloud == "azure":
            from skybroker.catalog.refresh.azure import prices_url

            return prices_url()
        return {"aws": clients.aws_endpoint, "gcp": clients.gcp_endpoint}[cloud]()
    except Exception:  # noqa: BLE001 - only used to word an error message
        return None


def _current(cloud: str, directory: Path) -> tuple[Path | None, str]:
    """The catalog a partial refresh completes: the one already in `directory`, else the one
    in use (user's or shipped); and its source."""
    import json

    from skybroker.catalog.store import catalog_info

    here = directory / f"{cloud}.csv"
    if here.is_file():
        try:
            meta = json.loads((directory / "SOURCES.json").read_text()).get(cloud) or {}
        except (OSError, ValueError, AttributeError):
            meta = {}
        return here, f"{meta.get('source', here)} ({meta.get('date', 'unknown date')})"
    try:
        info = catalog_info(cloud)
    except CatalogError:
        return None, ""
    return info.path, f"{info.source} ({info.date})"


def refresh(cloud: str, *, regions: list[str] | None = None, types: list[str] | None = None,
            progress: Progress | None = None, directory: Path | None = None,
            **kwargs: Any) -> RefreshResult:
    """Fetch, validate and install one cloud's catalog; raise CatalogError on any failure.

    With `regions` / `types` (wildcards allowed) only that slice is fetched; the rest of the
    catalog in use is carried over, and the provenance says so.
    """
    from skybroker.catalog.refresh.writer import check_rows, install, merge_partial
    from skybroker.catalog.store import user_catalog_dir

    cloud = cloud.lower()
    if cloud not in CLOUDS:
        from skybroker.utils.registry import did_you_mean

        raise CatalogError(f"Cannot refresh cloud {cloud!r}.{did_you_mean(cloud, CLOUDS)}",
                           hint=f"one of: {', '.join(CLOUDS)}")
    module = importlib.import_module(f"skybroker.catalog.refresh.{cloud}")
    start = time.perf_counter()
    try:
        if types:
            kwargs["types"] = types
        rows, notes = module.refresh_rows(regions=regions, progress=progress, **kwargs)
        check_rows(rows, cloud)  # a partial refresh that fetched nothing is a failure too
        fetched = len(rows)
        directory = directory or user_catalog_dir()
        old, old_source = _current(cloud, directory)
        rows, kept = merge_partial(old, rows, regions, types)
        source = notes.pop("source", module.SOURCE) + (" (partial refresh)" if kept else "")
        notes = {**notes, "rows_fetched": fetched, "rows_carried_over": kept,
                 "refresh_seconds": round(time.perf_counter() - start, 2)}
        if kept:
            notes["carried_over_from"] = old_source
        path = install(cloud, rows, source, notes, directory)
    except KeyboardInterrupt:
        raise CatalogError(f"{cloud} refresh interrupted; the old catalog is kept.") from None
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear line
        err = explain(cloud, e, _endpoint(cloud))
        raise err from e
    return RefreshResult(cloud, path, len(rows), source,
                         time.perf_counter() - start, notes)
