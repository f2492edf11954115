"""Managed jobs: a controller that survives preemptions and meets deadlines on spot.

Python API: `launch(task_or_yaml, deadline_h=..., duration_h=..., policy=...) -> job id`,
`queue()`, `cancel(ids)`, `logs(id, follow=True)`, `wait(id)`. See docs/managed-jobs.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["cancel", "launch", "logs", "queue", "summary", "wait"]


def __getattr__(name: str) -> Any:  # lazy: `import skybroker.jobs` stays cheap for the CLI
    if name in __all__:
        from skybroker.jobs import api

        return getattr(api, name)
    raise AttributeError(name)
