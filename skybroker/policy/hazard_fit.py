"""Fit Hazard DP's run-length model to availability traces: your own zone's history.

Why: `best` (Hazard DP) plans on a model of how long spot runs and outages last, and the model
it ships with was estimated on two AWS K80 traces of 2022. Another cloud, zone, instance type or
gang size can behave differently (docs/policies.md measures what fitting buys on the other
trace families). So the estimate is code, not a
number in a docstring: the shipped constants are what ``fit_hazards`` returns on the two K80
traces (a test checks it), and users fit their own with ``sky replay --fit-hazards TRACE``.

The estimate: for every tick of every trace, the state (spot up or down), its age in model
steps (so far, counting this tick) and whether it ends after this tick; per (state, age bucket)
the share of ticks that end the state is the per-tick hazard, converted to the model's step.
The last run of each trace is censored (its end is not seen), so it adds exposure but no end.
Buckets a trace never reaches lean on the shipped value through ``prior_weight`` pseudo-ticks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skybroker.policy.hazard_dp import BUCKETS, HAZARD_600, STEP_S, bucket_of

FORMAT = "skybroker-hazards/1"


class HazardFileError(ValueError):
    """A hazards file that cannot be used (wrong format, shape or values)."""


def _counts(avail: np.ndarray, gap_s: float, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(ends, exposure) per (state, bucket) over one trace's ticks."""
    a = np.asarray(avail, dtype=bool)
    ends = np.zeros((2, BUCKETS))
    exposure = np.zeros((2, BUCKETS))
    if a.size == 0:
        return ends, exposure
    cut = np.flatnonzero(a[1:] != a[:-1]) + 1
    starts = np.r_[0, cut]
    stops = np.r_[cut, a.size]
    for s, e in zip(starts, stops):
        state = int(a[s])
        age = np.arange(1, e - s + 1) * gap_s / step_s
        np.add.at(exposure[state], bucket_of(age), 1.0)
        if e < a.size:  # the trace's last run is censored
            ends[state, bucket_of(np.array([age[-1]]))[0]] += 1.0
    return ends, exposure


def fit_hazards(traces: Sequence, nodes: int = 1, prior_weight: float = 1.0,
                step_s: float = STEP_S) -> np.ndarray:
    """Per-step hazards [outage, spot run] x age bucket, estimated on ``traces``.

    ``traces`` are :class:`skybroker.traces.Trace` objects (or ``(avail, gap_s)`` pairs); a
    gang of ``nodes`` counts as up when the trace's count is >= nodes. All must share one
    tick length (per-tick hazards of different ticks do not pool).
    """
    pairs = [(t.available(nodes), t.gap_s) if hasattr(t, "available") else t for t in traces]
    if not pairs:
        raise ValueError("fit_hazards: no trace given")
    gaps = {float(g) for _, g in pairs}
    if len(gaps) > 1:
        raise ValueError(f"fit_hazards: traces must share one tick length, got "
                         f"{', '.join(f'{g:g} s' for g in sorted(gaps))}; fit each separately")
    gap = gaps.pop()
    ends = np.zeros((2, BUCKETS))
    exposure = np.zeros((2, BUCKETS))
    for avail, _ in pairs:
        e, x = _counts(avail, gap, step_s)
        ends += e
        exposure += x
    if exposure.sum() == 0:
        raise ValueError("fit_hazards: the traces hold no ticks")
    # Prior: the shipped hazards, expressed per tick of this trace.
    prior = 1.0 - (1.0 - HAZARD_600) ** (gap / STEP_S)
    seen = exposure + prior_weight > 0
    per_tick = np.where(seen, (ends + prior_weight * prior) / np.where(seen, exposure + prior_weight,
                                                                      1.0), prior)
    return 1.0 - (1.0 - per_tick) ** (step_s / gap)


def check_hazards(h: object) -> np.ndarray:
    """A (2, BUCKETS) array of probabilities in [0, 1], or ValueError saying what is wrong."""
    arr = np.asarray(h, dtype=float)
    if arr.shape != (2, BUCKETS):
        raise ValueError(f"hazards must be 2 rows (outage, spot run) of {BUCKETS} age buckets, "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError("hazards are probabilities: every value must be in [0, 1]")
    return arr


def save_hazards(h: np.ndarray, path: str | Path, source: str = "") -> None:
    """Write hazards as JSON (what `HazardDP(hazards=PATH)` and `--hazards` read)."""
    doc = {"format": FORMAT, "step_s": STEP_S, "buckets_steps": ["1", "2-3", "4-7", "8-15",
                                                                  "16-31", "32+"],
           "outage": [round(float(x), 6) for x in h[0]],
           "spot_run": [round(float(x), 6) for x in h[1]], "source": source}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")


def load_hazards(path: str | Path) -> np.ndarray:
    """Read a hazards JSON written by :func:`save_hazards`."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise HazardFileError(f"{p}: cannot read hazards: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HazardFileError(f"{p}: not a hazards file (expected \"format\": \"{FORMAT}\"; "
                              "write one with `sky replay --fit-hazards TRACE --save-hazards "
                              f"{p.name}`)")
    if float(doc.get("step_s", STEP_S)) != STEP_S:
        raise HazardFileError(f"{p}: step_s must be {STEP_S:g}, got {doc.get('step_s')}")
    try:
        return check_hazards([doc.get("outage"), doc.get("spot_run")])
    except (ValueError, TypeError) as e:
        raise HazardFileError(f"{p}: {e}") from None
