"""`sky down`: see skybroker.core.lifecycle.down."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("clusters", nargs=-1)
@click.option("-a", "--all", "all_clusters", is_flag=True, help="Every cluster.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def down(clusters, all_clusters, yes):
    """Terminate CLUSTERS: nothing is left running (verified), and their record goes."""
    from skybroker.core import lifecycle
    from skybroker.state import clusters as cstate

    names = [r.name for r in cstate.list_clusters()] if all_clusters else list(clusters)
    if all_clusters and not names:
        click.echo("No existing clusters.")
        return
    if not names:
        raise click.UsageError("Name at least one cluster, or --all.")
    if not yes and "down" != "start":
        click.confirm(f"Down {', '.join(names)}?", default=True, abort=True)
    for name in names:
        lifecycle.down(name)
