"""`sky queue`: a cluster's job queue (fresh from the head node's agent)."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("clusters", nargs=-1)
def queue(clusters):
    """Show the jobs of CLUSTERS (default: every UP cluster)."""
    from skybroker.cli.status import ago
    from skybroker.cli.tables import table
    from skybroker.core.jobs import queue as core_queue

    if not clusters:
        from skybroker.core.lifecycle import status as core_status

        clusters = [r.name for r in core_status(None) if r.status == "UP"]
        if not clusters:
            click.echo("No UP clusters.")
            return
    for name in clusters:
        jobs = core_queue(name)
        click.echo(f"Job queue of cluster {name}")
        rows = []
        for j in jobs:
            dur = "-"
            if j.started_at:
                import time

                dur = f"{(j.ended_at or time.time()) - j.started_at:.0f}s"
            rows.append([str(j.job_id), j.name or "-", ago(j.submitted_at), dur, j.status])
        click.echo(table(["ID", "NAME", "SUBMITTED", "DURATION", "STATUS"], rows) if rows else "No jobs.")
