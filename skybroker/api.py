"""The Python API: the CLI's verbs as functions (same core code, no click, no printing tables).

    from skybroker import api
    r = api.launch("examples/minimal.yaml", cluster_name="dev")
    api.queue("dev"); api.down("dev")

Task arguments are a path to a task YAML, a `Task`, or a list of tasks. Progress goes to
stderr and job output to `on_line` (default: stdout), exactly as with `sky`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _tasks(task: Any, envs: dict[str, str] | None = None) -> list[Any]:
    if isinstance(task, (list, tuple)):
        return list(task)
    if isinstance(task, str) or hasattr(task, "__fspath__"):
        from skybroker.task import load_tasks

        return load_tasks(str(task), env_overrides=envs or None)
    return [task]


def launch(task: Any, cluster_name: str | None = None, *, detach_run: bool = False,
           retry_until_up: bool = False, clouds: list[str] | None = None,
           envs: dict[str, str] | None = None, on_line: Callable[[str], None] | None = None):
    """Provision (or reuse) a cluster and run the task; returns a LaunchResult."""
    from skybroker.core.launch import launch as _launch

    return _launch(_tasks(task, envs), cluster_name, detach_run=detach_run,
                   retry_until_up=retry_until_up, clouds=clouds, on_line=on_line)


def exec(cluster_name: str, task: Any, *, detach_run: bool = False,  # noqa: A001 - the verb
         envs: dict[str, str] | None = None, on_line: Callable[[str], None] | None = None):
    """Run a task (or a shell command string) on an UP cluster as a new job."""
    from skybroker.core.jobs import exec_task

    if isinstance(task, str) and not task.endswith((".yaml", ".yml")):
        from skybroker.task import Task

        task = Task(run=task, envs=dict(envs or {}))
    return exec_task(cluster_name, _tasks(task, envs)[0], detach=detach_run, on_line=on_line)


def status(cluster_names: list[str] | None = None, refresh: bool = False):
    from skybroker.core.lifecycle import status as _status

    return _status(cluster_names, refresh_all=refresh)


def queue(cluster_name: str):
    from skybroker.core.jobs import queue as _queue

    return _queue(cluster_name)


def logs(cluster_name: str, job_id: int | None = None, *, follow: bool = True,
         on_line: Callable[[str], None] | None = None):
    from skybroker.core.jobs import logs as _logs

    return _logs(cluster_name, job_id, follow=follow, on_line=on_line)


def cancel(cluster_name: str, job_ids: list[int] | None = None) -> list[int]:
    """Cancel the given jobs (None: every unfinished job)."""
    from skybroker.core.jobs import cancel as _cancel

    return _cancel(cluster_name, job_ids)


def stop(cluster_name: str) -> None:
    from skybroker.core.lifecycle import stop as _stop

    _stop(cluster_name)


def start(cluster_name: str) -> None:
    from skybroker.core.lifecycle import start as _start

    _start(cluster_name)


def down(cluster_name: str) -> None:
    from skybroker.core.lifecycle import down as _down

    _down(cluster_name)


def autostop(cluster_name: str, idle_minutes: int, down: bool = False) -> None:
    from skybroker.core.lifecycle import autostop as _autostop

    _autostop(cluster_name, idle_minutes, down)


def cost_report() -> list[dict[str, Any]]:
    from skybroker.core.lifecycle import cost_report as _cost

    return _cost()
