"""Multi-document task files (`---`): SkyPilot pipelines, run as a chain of tasks.

As in SkyPilot, a first document holding only `name:` names the pipeline and is not a task.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from skybroker.errors import TaskValidationError
from skybroker.task.task import Task, read_text
from skybroker.task.yaml_loader import load_documents


@dataclass
class Pipeline:
    name: str | None
    tasks: list[Task] = field(default_factory=list)


def load_pipeline_str(
    text: str,
    env_overrides: dict[str, Any] | None = None,
    source: str = "<string>",
    secret_overrides: dict[str, Any] | None = None,
) -> Pipeline:
    """Tasks of a (multi-document) YAML text; overrides apply to every task."""
    docs = [d for d in load_documents(text, source) if d is not None]
    name = None
    if len(docs) > 1 and isinstance(docs[0], dict) and set(docs[0]) == {"name"}:
        name = docs[0]["name"]
        if not isinstance(name, str):
            line = getattr(docs[0], "line", None)
            raise TaskValidationError(f"{source}:{line}: name: expected a string, got {name!r}")
        docs = docs[1:]
    tasks = [Task.from_yaml_config(d, env_overrides, secret_overrides, source) for d in docs]
    if not tasks:
        tasks = [Task(source=source)]
    if name is None and len(tasks) == 1:
        name = tasks[0].name
    return Pipeline(name, tasks)


def load_pipeline(
    path: str | os.PathLike[str],
    env_overrides: dict[str, Any] | None = None,
    secret_overrides: dict[str, Any] | None = None,
) -> Pipeline:
    source = os.fspath(path)
    return load_pipeline_str(read_text(source), env_overrides, source, secret_overrides)


def load_tasks(
    path: str | os.PathLike[str],
    env_overrides: dict[str, Any] | None = None,
    secret_overrides: dict[str, Any] | None = None,
) -> list[Task]:
    """Every task of a (possibly multi-document) task file, in order."""
    return load_pipeline(path, env_overrides, secret_overrides).tasks


def load_tasks_str(
    text: str, env_overrides: dict[str, Any] | None = None, source: str = "<string>"
) -> list[Task]:
    return load_pipeline_str(text, env_overrides, source).tasks
