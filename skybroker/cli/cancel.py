"""`sky cancel`: kill jobs' processes on every node of a cluster."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("cluster")
@click.argument("job_ids", type=int, nargs=-1)
@click.option("-a", "--all", "all_jobs", is_flag=True, help="Cancel every unfinished job.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def cancel(cluster, job_ids, all_jobs, yes):
    """Cancel JOB_IDS (or --all) on CLUSTER."""
    from skybroker.core.jobs import cancel as core_cancel

    if not job_ids and not all_jobs:
        raise click.UsageError("Give job ids, or --all.")
    done = core_cancel(cluster, None if all_jobs else list(job_ids))
    click.echo(f"Cancelled job(s): {', '.join(map(str, done))}." if done else "No unfinished job matched.")
