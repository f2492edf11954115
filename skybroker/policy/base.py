"""The deadline-policy contract, shared by the replay engine and the managed-job controller.

`skybroker.policy` imports nothing of the broker: it is numpy math over arrays of runs. One
call advances every run of a replay batch (shape ``(n,)``); the live controller calls the very
same code with ``n == 1``. What the controller does on a trace is therefore exactly what
replay predicts for it.

Contract
--------
* Types are small ints (``int8`` arrays): ``NONE`` (run nothing), ``SPOT``, ``OD``.
* Each tick the caller builds a :class:`RunState` (all fields arrays of shape ``(n,)``, all
  times in seconds, ``gap`` may be a scalar) *after* crediting the previous tick, i.e. after
  steps 1-3 of the replay semantics in ``docs/replay.md``: ``prev`` is the type that ran in the
  previous tick, ``cur`` is ``prev`` except ``NONE`` when the spot instance was just preempted.
* A policy is any object with ``name``, ``init_memory(n) -> dict[str, ndarray]`` and
  ``decide(state, memory) -> ndarray | Decision``. ``memory`` is per-run state for stateful
  policies: a dict of arrays of leading dimension ``n`` that the policy may update in place.
  It must survive ``{k: v.tolist()}`` -> JSON -> :func:`memory_from_json` so the controller
  can persist it; stateless policies return ``{}``.
* ``decide`` returns the *proposal*. The caller then always calls :func:`finalize`, which
  applies the simulator's final guarantee (the safety net every policy gets) and masks SPOT
  when no spot capacity is available. Policies never need to re-implement that guarantee.
* Multi-zone: ``spot_available`` has shape ``(n, zones)``; ``zone`` holds the zone of the
  previous tick's spot instance (-1 if none). A policy may return a :class:`Decision` with a
  ``zone`` array (-1 = "let finalize pick"); otherwise finalize keeps the current zone while it
  stays available and otherwise picks the lowest-numbered available zone. Changing zones is a
  restart like any other (the instance is new).
* The state is read-only for policies: the engine reuses its arrays from tick to tick, and
  ``state.terms`` (Rq, N1, N2, computed once per state) would go stale. ``finalize`` never
  mutates a proposal, so a policy may return any array, even one of the state's.
* New policies register themselves at import with ``register_policy(name, factory, aliases)``
  (`skybroker.policy.registry`); every module of this package is discovered on first lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

NONE, SPOT, OD = 0, 1, 2
TYPE_DTYPE = np.int8
TYPE_NAMES = {NONE: "none", SPOT: "spot", OD: "on_demand"}

_OD8, _NONE8 = TYPE_DTYPE(OD), TYPE_DTYPE(NONE)

#: Below this many seconds, remaining work / overhead counts as zero (as in the simulator).
EPS = 1e-3


@dataclass
class RunState:
    """The observable state of ``n`` runs at one decision point (seconds; arrays of shape (n,))."""

    elapsed: np.ndarray
    work_done: np.ndarray
    work_total: np.ndarray
    deadline: np.ndarray
    overhead: np.ndarray
    remaining_overhead: np.ndarray
    prev: np.ndarray
    cur: np.ndarray
    spot_available: np.ndarray  # bool, (n,) or (n, zones)
    gap: np.ndarray | float
    zone: np.ndarray | None = None  # zone of the previous spot tick, -1 if none (multi-zone)

    @property
    def n(self) -> int:
        return int(np.shape(self.work_done)[0])

    _terms: DeadlineTerms | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        a = self.spot_available = np.asarray(self.spot_available, dtype=bool)
        #: Whether spot can be had in *some* zone now: what single-zone rules look at.
        self.spot_any: np.ndarray = a.any(axis=1) if a.ndim == 2 else a

    @property
    def terms(self) -> DeadlineTerms:
        """The tick-rounded deadline terms, computed once per state (policy and finalize share).

        Cached on the state, so a caller that mutates the state's arrays builds a new state.
        """
        if self._terms is None:
            self._terms = deadline_terms(self)
        return self._terms

    @property
    def remaining_work(self) -> np.ndarray:
        return self.work_total - self.work_done


@dataclass
class Decision:
    """A proposal (or a final decision): a type per run and, for multi-zone, a zone per run."""

    kind: np.ndarray
    zone: np.ndarray | None = field(default=None)


@runtime_checkable
class Policy(Protocol):
    """What the engine and the controller need from a policy."""

    name: str

    def init_memory(self, n: int) -> dict[str, np.ndarray]: ...

    def decide(self, state: RunState, memory: dict[str, np.ndarray]) -> np.ndarray | Decision: ...


class BasePolicy:
    """Convenience base: stateless by default. Subclasses set ``name`` and define ``decide``."""

    name = "base"
    description = ""

    def init_memory(self, n: int) -> dict[str, np.ndarray]:
        return {}

    def decide(self, state: RunState, memory: dict[str, np.ndarray]) -> np.ndarray | Decision:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<policy {self.name}>"


def state_age_memory(n: int) -> dict[str, np.ndarray]:
    """Memory of policies that look at how long spot has been up (or down): whether spot was
    available at the last decision, and for how many decisions in a row that has held."""
    return {"last": np.zeros(n, dtype=bool), "age": np.zeros(n)}


def advance_state_age(state: RunState, memory: dict[str, np.ndarray]) -> np.ndarray:
    """Update :func:`state_age_memory` with this decision's availability; the age (>= 1)."""
    av = state.spot_any
    age = np.where(av == memory["last"], memory["age"] + 1.0, 1.0)
    memory["age"], memory["last"] = age, av.copy()
    return age


def memory_from_json(data: dict[str, list]) -> dict[str, np.ndarray]:
    """Inverse of ``{k: v.tolist()}``: what the controller reads back from its state DB."""
    return {k: np.asarray(v) for k, v in data.items()}


@dataclass
class DeadlineTerms:
    """The simulator's tick-rounded safety quantities, in whole ticks (shape (n,)).

    Rq = floor((R0 - e) / g) ticks left; N1 = ceil((C + d) / g) ticks needed after one restart,
    N2 = ceil((C + 2d) / g) after two. Comparing tick counts is exactly comparing the
    simulator's seconds (g > 0), minus three multiplications per tick.
    """

    left: np.ndarray
    need1: np.ndarray
    need2: np.ndarray
    must_go: np.ndarray  # N1 >= Rq: one restart is all the slack left (the guarantee's test)
    two_restarts_late: np.ndarray  # N2 >= Rq: two more restarts no longer fit
    # must_go.any(), once for the policy and finalize (count_nonzero: ndarray.any() costs more)
    any_must_go: bool = True


def deadline_terms(state: RunState) -> DeadlineTerms:
    """Rq, N1, N2 as the paper's simulator computes them (both sides rounded to whole ticks)."""
    g = state.gap
    left = np.subtract(state.deadline, state.elapsed)
    left /= g
    np.floor(left, out=left)
    c = np.subtract(state.work_total, state.work_done)  # C = C0 - W
    c += state.overhead
    need1 = c / g
    np.ceil(need1, out=need1)
    c += state.overhead
    c /= g
    need2 = np.ceil(c, out=c)
    must = need1 >= left
    return DeadlineTerms(left, need1, need2, must, need2 >= left, np.count_nonzero(must) > 0)


def _choose_zone(state: RunState, kind: np.ndarray, proposed: np.ndarray | None) -> np.ndarray:
    """Zone per run for a SPOT decision: proposed if available, else current, else first free."""
    avail = np.asarray(state.spot_available, dtype=bool)
    n, z = avail.shape
    rows = np.arange(n)
    cur_zone = state.zone if state.zone is not None else np.full(n, -1)
    first = np.argmax(avail, axis=1)
    cur_ok = (cur_zone >= 0) & avail[rows, np.clip(cur_zone, 0, z - 1)]
    zone = np.where(cur_ok, cur_zone, first)
    if proposed is not None:
        p = np.asarray(proposed)
        p_ok = (p >= 0) & (p < z) & avail[rows, np.clip(p, 0, z - 1)]
        zone = np.where(p_ok, p, zone)
    return np.where(kind == SPOT, zone, -1).astype(np.int64)


def finalize(state: RunState, proposal: np.ndarray | Decision) -> Decision:
    """Apply the simulator's final guarantee (step 4) to a policy's proposal.

    With Rq and N1 as in :func:`deadline_terms`: if N1 >= Rq the run must go now, so it keeps
    a fully restarted spot instance (prev SPOT and no overhead left) and otherwise takes
    on-demand. Then a SPOT proposal with no spot capacity becomes NONE. The replay engine and
    the controller both call this, so every policy gets the same safety net.
    """
    if isinstance(proposal, Decision):
        kind, zone = np.asarray(proposal.kind), proposal.zone
    else:
        kind, zone = np.asarray(proposal), None
    terms = state.terms
    if terms.any_must_go:
        keep_spot = (state.prev == SPOT) & (state.remaining_overhead < EPS)
        # OD - keep_spot is SPOT where the spot instance is kept, OD elsewhere.
        kind = np.where(terms.must_go, np.subtract(_OD8, keep_spot, dtype=TYPE_DTYPE), kind)
    kind = kind.astype(TYPE_DTYPE, copy=False)
    # SPOT with no spot to be had becomes NONE (np.where copies: the proposal is not mutated).
    kind = np.where(np.greater(kind == SPOT, state.spot_any), _NONE8, kind)  # a > b is a & ~b
    if state.spot_available.ndim == 2:
        return Decision(kind, _choose_zone(state, kind, zone))
    return Decision(kind, None)
