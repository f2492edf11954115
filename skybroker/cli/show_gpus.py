"""`sky show-gpus`: which accelerators exist, where, and at what on-demand and spot price.

Thin: parse, query the catalog (skybroker.catalog.summary does the vectorised grouping),
render with rich (imported inside the command so `sky --help` never pays for it).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click


def _fmt_count(x: float | None) -> str:
    if x is None:
        return "-"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _fmt_num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    return (f"{x:g}" if float(x).is_integer() else f"{x:.1f}") + unit


def _fmt_price(x: float | None) -> str:
    return "-" if x is None else f"$ {x:,.3f}"


def _pick(values: list[str], given: str, what: str) -> str:
    """Case-insensitive choice among `values`, or a did-you-mean error."""
    from skybroker.utils.registry import did_you_mean

    for v in values:
        if v.lower() == given.lower():
            return v
    raise click.ClickException(f"Unknown {what} {given!r}.{did_you_mean(given, values)}")


def _age_lines(clouds: list[str]) -> list[str]:
    from skybroker.catalog import catalog_info

    lines = []
    for c in clouds:
        try:
            info = catalog_info(c)
        except Exception:  # noqa: BLE001 - a missing date must not hide the prices
            continue
        lines.append(f"{c}: prices of {info.date} ({info.age_days} days old) from {info.source}")
    return lines


def _console():
    from rich.console import Console

    # Not a terminal (pipe, CliRunner): do not squeeze the table to 80 columns.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


@click.command("show-gpus")
@click.argument("accelerator", required=False, metavar="[NAME[:COUNT]]")
@click.option("--cloud", help="Only this cloud (aws, gcp, azure, ...).")
@click.option("--region", help="Only this region.")
@click.option("--all", "all_", is_flag=True,
              help="Every accelerator (no NAME), or every region of NAME's instance types.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def show_gpus(accelerator: str | None, cloud: str | None, region: str | None, all_: bool,
              as_json: bool) -> None:
    """List accelerators, where they are offered and at what price (cheapest first).

    Without NAME: common accelerators, the counts on offer and the cheapest price per device.
    With NAME (e.g. A100, a100-80gb:8): every instance type carrying it, cheapest first.
    """
    from skybroker.catalog import (
        accelerator_suggestions,
        available_clouds,
        canonical_accelerator,
        load_catalogs,
        parse_accelerator_spec,
    )
    from skybroker.catalog.summary import (
        COMMON_ACCELERATORS,
        accelerator_overview,
        instance_offers,
    )
    from skybroker.errors import SkyError

    clouds = available_clouds()
    if cloud:
        clouds = [_pick(clouds, cloud, "cloud")]
    table = load_catalogs(clouds)
    if region:
        region = _pick(table.unique("region"), region, "region")
        table = table.select(region=region)
    table = table[table.accelerator_count > 0]
    present = table.accelerator_names()

    if accelerator is None:
        names = None if all_ else [n for n in COMMON_ACCELERATORS if n in present]
        rows = accelerator_overview(table, names)
        if as_json:
            click.echo(json.dumps(rows, indent=1))
            return
        _render_overview(rows, all_)
        _print_age(table.unique("cloud"))
        return

    try:
        name, count = parse_accelerator_spec(accelerator)
    except SkyError as e:
        raise click.BadParameter(str(e), param_hint="NAME[:COUNT]") from None
    canon = canonical_accelerator(name, present)
    if canon is None or canon not in present:
        hints = accelerator_suggestions(name, present)
        where = " in " + "/".join(x for x in (cloud, region) if x) if (cloud or region) else ""
        known = "Unknown" if canon is None else "No offers of"
        msg = f"{known} accelerator {name!r}{where}."
        if hints:
            msg += f" Did you mean {', '.join(repr(h) for h in hints)}?"
        raise click.ClickException(msg + " `sky show-gpus --all` lists them all.")
    sub = table.select(accelerator=canon)
    if count is not None:
        sub = sub[sub.accelerator_count == count]
        if not len(sub):
            counts = ", ".join(_fmt_count(c) for c in sorted(set(
                table.select(accelerator=canon).accelerator_count.tolist())))
            raise click.ClickException(
                f"No offers of {canon}:{_fmt_count(count)}. Counts on offer: {counts}.")
    rows = instance_offers(sub, per_region=all_ or bool(region))
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    _render_offers(canon, rows, per_region=all_ or bool(region))
    _print_age(sub.unique("cloud"))


def _render_overview(rows: list[dict[str, Any]], all_: bool) -> None:
    from rich.table import Table

    t = Table(title="Accelerators (cheapest price per device)", header_style="bold")
    for col, just in (("GPU", "left"), ("MEM", "right"), ("COUNTS", "left"),
                      ("CLOUDS", "left"), ("ON-DEMAND $/h", "right"), ("WHERE", "left"),
                      ("SPOT $/h", "right"), ("WHERE (SPOT)", "left")):
        t.add_column(col, justify=just)
    for r in rows:
        od, sp = r["on_demand"], r["spot"]
        t.add_row(r["accelerator"], _fmt_num(r["memory_gib"], "GB"),
                  ", ".join(_fmt_count(c) for c in r["counts"]), ", ".join(r["clouds"]),
                  _fmt_price(od and od["price_per_device"]),
                  f"{od['cloud']}/{od['region']}" if od else "-",
                  _fmt_price(sp and sp["price_per_device"]),
                  f"{sp['cloud']}/{sp['zone'] or sp['region']}" if sp else "-")
    con = _console()
    con.print(t)
    if not all_:
        con.print("Show every accelerator: sky show-gpus --all;"
                  " details of one: sky show-gpus A100 (or A100:8)", style="dim")


def _render_offers(name: str, rows: list[dict[str, Any]], per_region: bool) -> None:
    from rich.table import Table

    t = Table(title=f"{name} offers, cheapest first" +
              ("" if per_region else " (cheapest region per instance type; --all for every region)"),
              header_style="bold")
    for col, just in (("CLOUD", "left"), ("INSTANCE", "left"), ("GPUS", "right"),
                      ("vCPUs", "right"), ("MEMORY", "right"), ("GPU MEM", "right"),
                      ("ON-DEMAND $/h", "right"), ("REGION", "left"),
                      ("SPOT $/h", "right"), ("SPOT ZONE", "left")):
        t.add_column(col, justify=just)
    for r in rows:
        t.add_row(r["cloud"], r["instance_type"], f"{name}:{_fmt_count(r['count'])}",
                  _fmt_num(r["vcpus"]), _fmt_num(r["memory_gib"], "GB"),
                  _fmt_num(r["accelerator_memory_gib"], "GB"),
                  _fmt_price(r["on_demand"]), r["on_demand_where"] or "-",
                  _fmt_price(r["spot"]), r["spot_where"] or "-")
    _console().print(t)


def _print_age(clouds: list[str]) -> None:
    con = _console()
    for line in _age_lines(clouds):
        con.print(line, style="dim", soft_wrap=True)
