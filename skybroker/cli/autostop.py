"""`sky autostop`: stop (or down) a cluster after it has been idle for a while."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("clusters", nargs=-1, required=True)
@click.option("-i", "--idle-minutes", type=int, default=5, show_default=True,
              help="Minutes with no running or pending job before stopping.")
@click.option("--down", is_flag=True, help="Terminate instead of stop.")
@click.option("--cancel", "cancel_", is_flag=True, help="Turn autostop off.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def autostop(clusters, idle_minutes, down, cancel_, yes):
    """Enforced on the cluster itself (its head node's agent), not by this machine staying awake."""
    from skybroker.core.lifecycle import autostop as core_autostop

    for name in clusters:
        core_autostop(name, -1 if cancel_ else idle_minutes, down)
        click.echo(f"{name}: autostop " + ("off." if cancel_ else
                                           f"after {idle_minutes} idle minute(s){' (down)' if down else ''}."))
