"""`sky jobs`: managed jobs that survive preemptions and meet deadlines on spot."""

from __future__ import annotations

import click

from skybroker.cli.options import env_options, parse_envs, resource_options

CTX = {"help_option_names": ["-h", "--help"]}


def _hours(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    from skybroker.utils.units import parse_duration_hours

    try:
        return parse_duration_hours(value, f"--{param.name.replace('_', '-')}")
    except ValueError as e:
        raise click.BadParameter(str(e).split(": ", 1)[-1]) from None


@click.group(context_settings=CTX)
def jobs() -> None:
    """Managed jobs: relaunched across preemptions; with a deadline, a policy switches
    between spot and on-demand to finish in time at the lowest cost."""


@jobs.command(context_settings=CTX)
@click.argument("task_file", metavar="TASK.yaml", type=click.Path(dir_okay=False))
@click.option("--deadline", callback=_hours, metavar="DURATION",
              help="Finish within this time of launch, e.g. 60h (job time; see docs).")
@click.option("--duration", callback=_hours, metavar="DURATION",
              help="How long the job runs on one instance without interruption, e.g. 48h.")
@click.option("--restart-overhead", callback=_hours, metavar="DURATION",
              help="Time lost on every (re)start: boot, setup, checkpoint reload (e.g. 0.2h).")
@click.option("--policy", metavar="NAME",
              help="A deadline policy (uniform_progress, greedy, best, ...) or a recovery strategy "
                   "without deadline (failover, eager_next_region). Default: uniform_progress "
                   "with a deadline, failover without.")
@click.option("--hazards", type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="FILE.json",
              help="With --policy best: its run-length model fitted on your zone's history "
                   "(`sky replay --fit-hazards TRACE --save-hazards FILE.json`).")
@click.option("--max-restarts-on-errors", type=int, default=None, metavar="N",
              help="Retry the task this many times when it fails by itself.")
@click.option("-r", "--retry-until-up", is_flag=True,
              help="When the first launch fails for good on every placement (quota, "
                   "credentials, invalid request), keep retrying instead of ending the job "
                   "FAILED_NO_RESOURCE.")
@resource_options
@env_options
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("-d", "--detach-run", is_flag=True, help="Return once the job is submitted.")
def launch(task_file, deadline, duration, restart_overhead, policy, hazards,
           max_restarts_on_errors, retry_until_up, yes, detach_run, **opts):
    """Launch TASK.yaml as a managed job (`resources.job_recovery` in the YAML works too).

    \b
    Examples:
      sky jobs launch train.yaml --deadline 60h --duration 48h --restart-overhead 0.2h
      sky jobs launch train.yaml --policy eager_next_region --use-spot
    """
    from skybroker import jobs as api
    from skybroker.cli.plan_view import load_cli_tasks

    envs = parse_envs(opts.pop("env"), opts.pop("env_file"))
    tasks = load_cli_tasks(task_file, envs, opts)
    if len(tasks) != 1:
        raise click.UsageError("managed jobs run one task; this file holds a pipeline.")
    task = tasks[0]
    kw = {"deadline_h": deadline, "duration_h": duration, "restart_overhead_h": restart_overhead,
          "policy": policy, "max_restarts_on_errors": max_restarts_on_errors,
          "hazards": hazards}
    click.echo(f"{task.name or task_file}, as a managed job:")
    for line in api.summary(task, **kw):
        click.echo(f"  {line}")
    if not yes:
        click.confirm("Launch it?", default=True, abort=True)
    job_id = api.launch(task, opts.get("name"), retry_until_up=retry_until_up, **kw)
    click.echo(f"Managed job {job_id} submitted. `sky jobs queue` shows it; "
               f"`sky jobs logs {job_id}` follows it.")
    if not detach_run:
        try:
            status = api.logs(job_id, follow=True)
        except KeyboardInterrupt:
            click.echo(f"Detached; the job keeps running (`sky jobs logs {job_id} -f`).", err=True)
            return
        click.echo(f"Managed job {job_id} {status}.")
        if status != "SUCCEEDED":
            raise SystemExit(1)


def _fmt(v, spec: str = ".2f", unit: str = "") -> str:
    return "-" if v is None else f"{v:{spec}}{unit}"


@jobs.command(context_settings=CTX)
@click.option("--active", is_flag=True, help="Only unfinished jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def queue(active, as_json):
    """Show managed jobs: status, placement, hours, cost so far / projected, deadline slack."""
    from skybroker import jobs as api
    from skybroker.cli.status import ago
    from skybroker.cli.tables import table
    from skybroker.jobs import state as S
    from skybroker.jobs.controller import controller_pid, ensure_running

    rows = api.queue(all_jobs=not active)
    if any(r["status"] not in S.TERMINAL for r in rows) and controller_pid() is None:
        ensure_running()
        click.echo("(the jobs controller was not running: restarted it)", err=True)
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo("No managed jobs.")
        return
    head = ["ID", "NAME", "SUBMITTED", "STATUS", "POLICY", "CLUSTER", "PLACEMENT", "SPOT_H", "OD_H",
            "COST", "PROJECTED", "SLACK_H", "ON_TRACK"]
    out = []
    for r in rows:
        track = "-" if r["on_track"] is None else ("yes" if r["on_track"] else "NO")
        out.append([str(r["id"]), r["name"] or "-", ago(r["submitted_at"]), r["status"],
                    r["policy"], r["cluster"] or "-", r["placement"], _fmt(r["spot_h"]),
                    _fmt(r["od_h"]), _fmt(r["cost"], ".4f", ""), _fmt(r["projected_cost"], ".4f"),
                    _fmt(r["slack_h"]), track])
    click.echo(table(head, out))
    for r in rows:  # why a job failed: one line each (the table has no room for it)
        if r["status"].startswith("FAILED") and r["failure_reason"]:
            click.echo(f"Job {r['id']} {r['status']}: {r['failure_reason']}")


@jobs.command(context_settings=CTX)
@click.argument("job", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
@click.option("--controller", is_flag=True, help="The controller's decisions and events instead.")
def logs(job, follow, controller):
    """Print a managed job's output (the latest job by default)."""
    import contextlib

    from skybroker import jobs as api

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops following, not the job
        api.logs(job, follow=follow, controller=controller)


@jobs.command(context_settings=CTX)
@click.argument("jobs_", metavar="[JOB]...", nargs=-1)
@click.option("-a", "--all", "all_", is_flag=True, help="Cancel every unfinished job.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def cancel(jobs_, all_, yes):
    """Cancel managed jobs (by id or name); their clusters are terminated."""
    from skybroker import jobs as api

    if not jobs_ and not all_:
        raise click.UsageError("name the jobs to cancel, or --all.")
    if not yes:
        click.confirm(f"Cancel {'all managed jobs' if all_ else ', '.join(jobs_)}?", default=True,
                      abort=True)
    ids = api.cancel(list(jobs_), all_=all_)
    click.echo(f"Cancelling {len(ids)} job(s): {', '.join(map(str, ids)) or '-'}.")
