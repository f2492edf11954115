"""`sky exec`: run a task on an existing UP cluster (workdir synced, setup skipped)."""

from __future__ import annotations

import click

from skybroker.cli.options import env_options, parse_envs


@click.command("exec", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("cluster")
@click.argument("task_or_command", nargs=-1, required=True)
@env_options
@click.option("-d", "--detach-run", is_flag=True, help="Return once the job is queued.")
def exec_(cluster, task_or_command, detach_run, **opts):
    """Append a job to CLUSTER's queue: a task YAML, or a shell command."""
    from skybroker.core.jobs import exec_task

    envs = parse_envs(opts.pop("env"), opts.pop("env_file"))
    arg = " ".join(task_or_command)
    if len(task_or_command) == 1 and arg.endswith((".yaml", ".yml")):
        from skybroker.cli.plan_view import load_cli_tasks

        task = load_cli_tasks(arg, envs, {})[0]
    else:
        from skybroker.task import Task

        task = Task(run=arg, envs=envs)
    out = exec_task(cluster, task, detach=detach_run)
    if out.returncode:
        raise SystemExit(out.returncode)
