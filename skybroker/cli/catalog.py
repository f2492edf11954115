"""`sky catalog refresh|info`: rebuild offer tables from the clouds' price APIs; say how old
the prices in use are.

Thin: parse, call skybroker.catalog.refresh / catalog_info, render. Rich and cloud SDKs are
imported only inside the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

STALE_DAYS = 30
REFRESHABLE = ("aws", "gcp", "azure")


def _split(values: tuple[str, ...]) -> list[str] | None:
    """Repeated and/or comma-separated option values, or None when not given."""
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


@click.group("catalog")
def catalog() -> None:
    """Refresh the price catalogs from the clouds' APIs and show how old they are."""


@catalog.command("refresh")
@click.argument("clouds", nargs=-1, metavar="[aws|gcp|azure]...")
@click.option("-r", "--region", "regions", multiple=True, metavar="REGION",
              help="Only these regions (repeat or comma-separate); the rest of the catalog "
                   "in use is kept.")
@click.option("-t", "--types", "types", multiple=True, metavar="PATTERN",
              help="Only these instance types, wildcards allowed (e.g. 'g5.*,p4d.*').")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar (default: when stderr is a terminal).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write <cloud>.csv and SOURCES.json here instead of the broker home "
                   "(e.g. to regenerate shipped catalogs).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def refresh_cmd(clouds: tuple[str, ...], regions: tuple[str, ...], types: tuple[str, ...],
                progress: bool | None, out_dir: str | None, as_json: bool) -> None:
    """Rebuild CLOUDS' catalogs (default: all three) into the broker home, atomically.

    A failed refresh leaves the catalog in use untouched and says why.
    """
    from skybroker.catalog.refresh import refresh
    from skybroker.catalog.refresh.common import Progress
    from skybroker.errors import CatalogError
    from skybroker.utils.registry import did_you_mean

    targets = [c.lower() for c in clouds] or list(REFRESHABLE)
    for c in targets:
        if c not in REFRESHABLE:
            raise click.UsageError(f"Cannot refresh {c!r}.{did_you_mean(c, REFRESHABLE)} "
                                   f"Choose from {', '.join(REFRESHABLE)}.")
    results, failures = [], []
    with Progress(progress if not as_json else False) as bar:
        for cloud in targets:
            try:
                r = refresh(cloud, regions=_split(regions), types=_split(types), progress=bar,
                            directory=Path(out_dir) if out_dir else None)
            except CatalogError as e:
                if len(targets) == 1 and not as_json:
                    raise
                failures.append((cloud, e))
                continue
            results.append(r)
            if not as_json:
                kept = r.notes.get("rows_carried_over") or 0
                extra = f", {kept:,} kept from the catalog in use" if kept else ""
                bar.print(f"{cloud}: {r.rows:,} offers{extra} -> {r.path} ({r.seconds:.1f} s)")
    if as_json:
        click.echo(json.dumps({
            "refreshed": [{"cloud": r.cloud, "path": str(r.path), "rows": r.rows,
                           "source": r.source, "seconds": round(r.seconds, 2), "notes": r.notes}
                          for r in results],
            "failed": [{"cloud": c, "error": str(e), "hint": e.hint} for c, e in failures]},
            indent=2, default=str))
    else:
        for _, e in failures:
            click.secho(f"Error: {e}", fg="red", err=True)
            if e.hint:
                click.echo(f"Hint: {e.hint}", err=True)
    if failures:
        sys.exit(1)


def _info_rows(max_age: int) -> list[dict]:
    from skybroker.catalog.store import KNOWN_CLOUDS, catalog_info, user_catalog_dir
    from skybroker.errors import CatalogError

    rows = []
    for cloud in KNOWN_CLOUDS:
        try:
            info = catalog_info(cloud)
        except CatalogError:
            continue
        refreshed = info.path.parent.resolve() == user_catalog_dir().resolve()
        stale = info.age_days is not None and info.age_days > max_age and cloud in REFRESHABLE
        rows.append({"cloud": cloud, "kind": "refreshed" if refreshed else "shipped",
                     "path": str(info.path), "source": info.source,
                     "date": info.date.isoformat() if info.date else None,
                     "age_days": info.age_days, "stale": stale})
    return rows


@catalog.command("info")
@click.option("--max-age", type=int, default=STALE_DAYS, show_default=True, metavar="DAYS",
              help="Warn when a catalog's prices are older than this.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def info_cmd(max_age: int, as_json: bool) -> None:
    """Per cloud: the catalog in use, where its prices come from, their date and age."""
    rows = _info_rows(max_age)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    table = Table(box=None, pad_edge=False)
    for col in ("CLOUD", "CATALOG", "DATE", "AGE", "SOURCE"):
        table.add_column(col, overflow="fold" if col == "SOURCE" else "ellipsis")
    for r in rows:
        age = "-" if r["age_days"] is None else f"{r['age_days']} d"
        if r["stale"]:
            age = f"[yellow]{age} (stale)[/yellow]"
        table.add_row(r["cloud"], f"{r['kind']}: {r['path']}", r["date"] or "-", age, r["source"])
    console.print(table)
    for r in rows:
        if r["stale"]:
            console.print(f"[yellow]Warning:[/yellow] {r['cloud']} prices are {r['age_days']} days "
                          f"old (> {max_age}); run `sky catalog refresh {r['cloud']}`.")


catalog.add_command(info_cmd, "status")
