"""Offline evaluation of deadline policies on real spot-availability traces.

`replay()` / `replay_runs()` are the API; `engine.simulate` is the vectorised core with the
exact tick semantics of the paper's simulator (docs/replay.md).
"""

from __future__ import annotations

from skybroker.replay.api import (
    OPTIMUM,
    ReplayResult,
    evaluate,
    optimum_available,
    replay,
    replay_runs,
    resolve_policies,
    summarize,
    summarize_by,
)
from skybroker.replay.engine import (
    DEFAULT_PRICE_OD,
    DEFAULT_PRICE_SPOT,
    Batch,
    Outcome,
    make_batch,
    simulate,
)
from skybroker.replay.runs import RunSpec, TraceCache, load_runs

__all__ = [
    "DEFAULT_PRICE_OD", "DEFAULT_PRICE_SPOT", "OPTIMUM", "Batch", "Outcome", "ReplayResult",
    "RunSpec", "TraceCache", "evaluate", "load_runs", "make_batch", "optimum_available",
    "replay", "replay_runs", "resolve_policies", "simulate", "summarize", "summarize_by",
]
