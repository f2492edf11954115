"""`sky status`: clusters, their placement, autostop and state (reconciled with --refresh)."""

from __future__ import annotations

import time

import click

from skybroker.cli.tables import table


def ago(t: float | None) -> str:
    if not t:
        return "-"
    s = max(0, time.time() - t)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{int(s // size)}{unit} ago"
    return f"{int(s)}s ago"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("clusters", nargs=-1)
@click.option("-r", "--refresh", is_flag=True, help="Query the clouds for each cluster's real state.")
def status(clusters, refresh):
    """Show clusters (default: all). Local clusters are always reconciled; --refresh does all."""
    from skybroker.core.lifecycle import status as core_status

    recs = core_status(list(clusters) or None, refresh_all=refresh)
    if not recs:
        click.echo("No existing clusters.")
        return
    rows = []
    for r in recs:
        auto = "-" if r.autostop_minutes is None else f"{r.autostop_minutes}m{' (down)' if r.autostop_down else ''}"
        where = "/".join(x for x in (r.cloud, r.region, r.zone) if x)
        res = f"{r.num_nodes}x {r.instance_type}{' [spot]' if r.spot else ''}"
        price = "-" if r.hourly_price is None else f"${r.hourly_price:.3f}/h"
        rows.append([r.name, ago(r.launched_at), where, res, price, r.status, auto])
    click.echo(table(["NAME", "LAUNCHED", "INFRA", "RESOURCES", "PRICE", "STATUS", "AUTOSTOP"], rows))
    for r in recs:
        if r.last_error:
            click.secho(f"{r.name}: {r.last_error}", fg="yellow")
