"""`sky stop`, `sky start`, `sky down`: one shape, three verbs of skybroker.core.lifecycle."""

from __future__ import annotations

import click


def _command(verb: str, doc: str, confirm: bool) -> click.Command:
    @click.command(name=verb, help=doc, context_settings={"help_option_names": ["-h", "--help"]})
    @click.argument("clusters", nargs=-1)
    @click.option("-a", "--all", "all_clusters", is_flag=True, help="Every cluster.")
    @click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
    def cmd(clusters, all_clusters, yes):
        from skybroker.core import lifecycle
        from skybroker.state import clusters as cstate

        names = [r.name for r in cstate.list_clusters()] if all_clusters else list(clusters)
        if all_clusters and not names:
            click.echo("No existing clusters.")
            return
        if not names:
            raise click.UsageError("Name at least one cluster, or --all.")
        if confirm and not yes:
            click.confirm(f"{verb.capitalize()} {', '.join(names)}?", default=True, abort=True)
        for name in names:
            getattr(lifecycle, verb)(name)

    return cmd


stop = _command("stop", "Stop CLUSTERS: kill every process on their nodes and stop billing "
                        "(nodes are kept).", confirm=True)
start = _command("start", "Start stopped CLUSTERS again (autostop settings are re-applied).",
                 confirm=False)
down = _command("down", "Terminate CLUSTERS: nothing is left running (verified), and their "
                        "record goes.", confirm=True)
