"""Task layer: SkyPilot-compatible task YAML -> validated `Task` / `Resources` data.

Pure data and validation (PyYAML + stdlib only); no cloud, catalog or state imports.
"""

from skybroker.errors import TaskValidationError
from skybroker.task.pipeline import (
    Pipeline,
    load_pipeline,
    load_pipeline_str,
    load_tasks,
    load_tasks_str,
)
from skybroker.task.resources import Resources
from skybroker.task.task import Task

__all__ = [
    "Pipeline",
    "Resources",
    "Task",
    "TaskValidationError",
    "load_pipeline",
    "load_pipeline_str",
    "load_tasks",
    "load_tasks_str",
]
