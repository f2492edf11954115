"""`sky cost-report`: what each cluster (alive or gone) has cost, from its billed UP time."""

from __future__ import annotations

import click


@click.command("cost-report", context_settings={"help_option_names": ["-h", "--help"]})
def cost_report():
    """Estimated cost per cluster: hours UP x the hourly price recorded at launch."""
    from skybroker.cli.tables import table
    from skybroker.core.lifecycle import cost_report as core_cost

    rows = core_cost()
    if not rows:
        click.echo("No clusters launched yet.")
        return
    body = [[r["cluster"], f"{r['cloud']}/{r['region']}", f"{r['num_nodes']}x {r['instance_type']}"
             + (" [spot]" if r["spot"] else ""), f"{r['hours']:.3f}", f"${r['hourly_price']:.4f}",
             f"${r['cost']:.4f}", r["status"]] for r in rows]
    click.echo(table(["NAME", "INFRA", "RESOURCES", "HOURS", "$/H", "COST", "STATUS"], body))
    click.echo(f"Total: ${sum(r['cost'] for r in rows):.4f}")
