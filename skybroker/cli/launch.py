"""`sky launch`: plan a task on the cheapest feasible placement and run it there."""

from __future__ import annotations

import click

from skybroker.cli.options import env_options, parse_envs, resource_options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("task_file", metavar="TASK.yaml", type=click.Path(dir_okay=False))
@click.option("-c", "--cluster", "cluster", metavar="NAME",
              help="Cluster name. An UP cluster of that name is reused (no re-provisioning; "
                   "setup re-runs only if it changed).")
@resource_options
@env_options
@click.option("--dryrun", is_flag=True,
              help="Only plan: print the chosen placement, the best alternatives per cloud and "
                   "the estimated cost. Needs no credentials.")
@click.option("--json", "as_json", is_flag=True,
              help="With --dryrun: print the whole ranked plan as JSON (one object per placement).")
@click.option("--sort-by", type=click.Choice(["cost", "time"]), default="cost", show_default=True,
              help="Rank placements by $/hour, or by speed (more accelerators / vCPUs first).")
@click.option("-d", "--detach-run", is_flag=True,
              help="Return once the job is submitted instead of streaming its logs.")
@click.option("--retry-until-up", is_flag=True,
              help="When every placement fails, wait and try the plan again until one launches.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def launch(task_file, cluster, dryrun, as_json, sort_by, detach_run, retry_until_up, yes,
           **opts):
    """Launch TASK.yaml (SkyPilot format) on the best placement, and run it.

    The optimizer considers every instance type, zone and spot/on-demand choice of the
    enabled clouds that satisfies the task's resources, and ranks them by $/hour; the ranking
    is also the failover order when a placement has no capacity.

    \b
    Examples:
      sky launch examples/minimal.yaml                 # run on the embedded local cloud
      sky launch --dryrun --gpus A100:8 task.yaml      # show the plan and its cost
      sky launch --dryrun --json task.yaml | jq '.placements[0]'
      sky launch -c dev --cloud aws --use-spot task.yaml
    """
    from skybroker.cli.plan_view import load_cli_tasks

    envs = parse_envs(opts.pop("env"), opts.pop("env_file"))
    tasks = load_cli_tasks(task_file, envs, opts, require_envs=not dryrun)
    clouds = [opts["cloud"]] if opts.get("cloud") else None
    if dryrun:
        from skybroker.cli.plan_view import show_plan

        show_plan(tasks, clouds=clouds, sort_by=sort_by, as_json=as_json)
        return
    if as_json:
        raise click.UsageError("--json only applies to --dryrun.")
    from skybroker.core.launch import launch as core_launch

    result = core_launch(tasks, cluster, detach_run=detach_run, retry_until_up=retry_until_up,
                         clouds=clouds, yes=yes, sort_by=sort_by)
    rc = getattr(result, "returncode", 0) or 0
    if rc:
        raise SystemExit(rc)
