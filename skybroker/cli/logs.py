"""`sky logs`: print (and follow) a job's output, prefixed by node rank on multi-node jobs."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("cluster")
@click.argument("job_id", type=int, required=False)
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="Keep streaming until the job ends (Ctrl-C stops following, not the job).")
@click.option("--status", "status_only", is_flag=True, help="Only print the job's status.")
def logs(cluster, job_id, follow, status_only):
    """Show the log of JOB_ID (default: the latest job) on CLUSTER; exit code = the job's."""
    from skybroker.core import jobs as core_jobs

    if status_only:
        jobs = core_jobs.queue(cluster)
        j = next((x for x in jobs if job_id is None or x.job_id == job_id), None) if job_id else (jobs[-1] if jobs else None)
        click.echo(j.status if j else "no such job")
        return
    out = core_jobs.logs(cluster, job_id, follow=follow)
    if out.status and out.status != "SUCCEEDED" and follow:
        raise SystemExit(out.returncode or 1)
