"""`sky check`: which clouds have usable credentials (see skybroker.clouds.check)."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("clouds", nargs=-1)
@click.option("--verify", is_flag=True,
              help="Also make one authenticated API call per cloud (needs network).")
def check(clouds, verify):
    """Check CLOUDS (default: aws, gcp, azure); `sky launch` only uses enabled ones."""
    from skybroker.clouds.check import check as run_check

    results = run_check(list(clouds) or None, verify=verify)
    click.echo("Checking credentials to enable clouds for skybroker.")
    for r in results:
        click.echo("  " + click.style(r.line(), fg="green" if r.ok else "yellow"))
    enabled = [r.cloud for r in results if r.ok]
    click.echo("\nEnabled clouds: " + (", ".join(enabled) if enabled else "none (the local cloud always works)"))
