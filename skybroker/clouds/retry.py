"""The one retry loop every cloud's SDK calls go through.

Each cloud maps its SDK's exceptions to our typed errors (`map_error`); throttling is retried
here with capped, jittered exponential backoff, anything else is raised at once (mapped), and
unknown exceptions propagate untouched.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from skybroker import errors


def call_with_retry(fn: Callable[..., Any], args: tuple, kwargs: dict, *,
                    map_error: Callable[..., BaseException | None],
                    is_ok: Callable[[BaseException], bool], where: str,
                    attempts: int, base_s: float, max_s: float) -> Any:
    """fn(*args, **kwargs); None when `is_ok(exc)` (e.g. 404 on delete)."""
    delay = base_s
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if is_ok(e):
                return None
            mapped = map_error(e, where=where)
            if mapped is None:
                raise
            if not isinstance(mapped, errors.ThrottledError) or attempt == attempts - 1:
                raise mapped from e
        time.sleep(delay * (1 + random.uniform(-0.2, 0.2)))
        delay = min(delay * 2, max_s)
    raise AssertionError("unreachable")
