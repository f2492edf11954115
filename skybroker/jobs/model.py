"""The managed job's tick model: the replay engine's semantics, one run at a time.

Why a model and not wall-clock measurements: the controller must take *exactly* the decisions
replay computes for the same trace, so it advances the same state the same way (see
`skybroker.replay.engine`): at each decision point credit the previous tick
(``max(g - rem, 0)`` seconds of work, capped at what is left; the restart overhead left drops by
the tick), stop when the work is done, treat a preempted spot instance as NONE, ask the policy,
apply the shared `finalize` guarantee, and start a restart (``rem = d``) on any change to a
non-NONE type. Arithmetic is done in the same order as the engine so floats agree bit for bit.

The job's clock: decision ``t`` is due at wall time ``t0 + t * wall_per_tick (+ offset)`` and
represents job time ``t * gap`` (``gap / wall_per_tick`` is the time compression of a rehearsal
on a trace-bound zone; 1 on real clouds). On a trace-bound zone, availability and preemptions
are read from the trace at the tick (not at the wall time a late controller wakes up), so a
controller that lags, or is killed and restarted, still takes the same decisions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from skybroker.policy.base import EPS, NONE, OD, SPOT

KIND_NAMES = {NONE: "none", SPOT: "spot", OD: "on_demand"}
RECOVERY_STRATEGIES = ("failover", "eager_next_region")


@dataclass
class Params:
    """What a job was launched with; fixed for its life (JSON in the DB)."""

    policy: str | None  # deadline policy (registry name), None: recovery only
    recovery: str = "failover"  # placement after a preemption: failover | eager_next_region
    deadline_s: float | None = None
    duration_s: float | None = None
    overhead_s: float = 0.0
    gap_s: float = 60.0  # job seconds per tick
    wall_per_tick: float = 60.0  # wall seconds per tick
    t0: float = 0.0  # wall time of tick 0
    offset: float = 0.0  # decisions are taken this many wall seconds after a tick boundary
    poll_s: float = 2.0  # between ticks, look for preemptions / the end (0: ticks only)
    wants_spot: bool = True  # recovery-only jobs: spot (True) or on-demand
    max_restarts_on_errors: int = 0
    nodes: int = 1
    market: dict[str, Any] | None = None  # {"zones": {zone: trace tick of job tick 0}}
    policy_params: dict[str, Any] | None = None  # constructor arguments, e.g. fitted hazards
    retry_until_up: bool = False  # a first launch failing for good retries instead of failing

    @property
    def scale(self) -> float:
        """Job seconds per wall second."""
        return self.gap_s / self.wall_per_tick

    def due(self, tick: int) -> float:
        return self.t0 + tick * self.wall_per_tick + self.offset

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Params:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class Model:
    """The per-job state carried between decision points (JSON in the DB)."""

    tick: int = 0  # the next on-tick decision
    elapsed: float = 0.0  # job seconds at the last decision
    on_tick: bool = True  # was the last decision on a tick (vs. an event between ticks)
    work: float = 0.0
    left: float = 0.0  # C0 - W, kept incrementally like the engine
    rem: float = 0.0
    prev: int = NONE
    price: float = 0.0  # $/h of what runs since the last decision (all nodes)
    launch_tick: int = -1  # tick at which the current spot cluster was decided
    zone: str | None = None
    zone_idx: int = -1  # multi-zone rehearsals: index of the previous spot tick's zone
    memory: dict[str, list] = field(default_factory=dict)
    spot_s: float = 0.0
    od_s: float = 0.0
    cost: float = 0.0
    switches: int = 0
    preemptions: int = 0
    reported: float | None = None  # the task's own last progress report (job seconds)
    avoid: list[dict[str, Any]] = field(default_factory=list)  # recently preempted zones
    # market ("spot" / "on_demand") -> [why, what to change]: no placement of it can ever
    # launch (found before the job first ran, or none fits at all); the policy sees no spot
    no_resource: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Model:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @classmethod
    def start(cls, params: Params) -> Model:
        return cls(left=float(params.duration_s or 0.0))


def credit(p: Params, m: Model, dt: float) -> None:
    """Step 1: credit what ran since the last decision (work, overhead, billing)."""
    if m.prev != NONE:
        y = dt - m.rem
        y = max(y, 0.0)
        if p.duration_s is not None:
            y = min(y, m.left)
            m.left -= y
        m.work += y
        m.rem -= dt
        if m.rem < EPS:
            m.rem = 0.0
        m.cost += m.price * dt / 3600.0
        if m.prev == SPOT:
            m.spot_s += dt
        else:
            m.od_s += dt
    m.elapsed += dt


def model_done(p: Params, m: Model) -> bool:
    """Step 2: the model says the work is done (only meaningful with a duration)."""
    return p.duration_s is not None and m.left <= EPS


def decide(p: Params, m: Model, policy: Any, spot_available: bool | list[bool], lost: bool,
           work_override: float | None = None) -> tuple[int, int, bool]:
    """Steps 3-5: (x, cur, restart). Mutates the model (prev, rem, memory, counters).

    ``lost``: the previous tick's cluster is gone (a spot preemption, or a lost node).
    ``spot_available`` is a bool, or one bool per zone (multi-zone rehearsals): then, as in
    replay, `finalize` picks the zone (the current one while it has capacity, else the first
    with some), `m.zone_idx` follows it, and moving to another zone is a restart.
    """
    import numpy as np

    from skybroker.policy.base import RunState, finalize, memory_from_json

    multi = isinstance(spot_available, (list, tuple, np.ndarray))
    avail = np.array([list(spot_available)], dtype=bool) if multi else \
        np.array([bool(spot_available)])
    any_avail = bool(avail.any())
    cur = NONE if lost else m.prev
    if m.prev == SPOT and lost:
        m.preemptions += 1
    zone = None
    if p.deadline_s is None or policy is None:
        x = (SPOT if any_avail else NONE) if p.wants_spot else OD
        if multi and x == SPOT:
            row = avail[0]
            zone = m.zone_idx if 0 <= m.zone_idx < row.size and row[m.zone_idx] else int(row.argmax())
    else:
        w = m.work if work_override is None else work_override
        st = RunState(
            elapsed=np.array([m.elapsed]), work_done=np.array([w]),
            work_total=np.array([float(p.duration_s)]), deadline=np.array([float(p.deadline_s)]),
            overhead=np.array([p.overhead_s]), remaining_overhead=np.array([m.rem]),
            prev=np.array([m.prev], dtype=np.int8), cur=np.array([cur], dtype=np.int8),
            spot_available=avail, gap=p.gap_s,
            zone=np.array([m.zone_idx if multi else -1], dtype=np.int64) if multi else None)
        memory = memory_from_json(m.memory) if m.memory else policy.init_memory(1)
        dec = finalize(st, policy.decide(st, memory))
        x = int(dec.kind[0])
        if multi and dec.zone is not None:
            zone = int(dec.zone[0]) if x == SPOT else None
        m.memory = {k: np.asarray(v).tolist() for k, v in memory.items()}
    restart = x != cur and x != NONE
    if multi:
        new_zone = zone if (x == SPOT and zone is not None) else -1
        restart = restart or (x == SPOT and cur == SPOT and new_zone != m.zone_idx)
        m.zone_idx = new_zone
    if restart:
        m.rem = p.overhead_s
        m.switches += 1
    m.prev = x
    return x, cur, restart


def projected_cost(p: Params, m: Model, price_spot: float | None, price_od: float | None) -> float:
    """Cost so far plus the rest of the work at the current type's price (OD when idle)."""
    if p.duration_s is None:
        return m.cost
    rate = m.price if m.prev != NONE and m.price else (price_od or m.price or 0.0)
    return m.cost + max(m.left + m.rem, 0.0) / 3600.0 * rate


def slack_s(p: Params, m: Model) -> float | None:
    """Deadline left minus what an on-demand finish needs now (one restart included)."""
    if p.deadline_s is None or p.duration_s is None:
        return None
    return p.deadline_s - m.elapsed - (m.left + (m.rem if m.prev == OD else p.overhead_s))


def on_track(p: Params, m: Model) -> bool | None:
    """On or above the uniform-progress line W = e * C0 / R0, with slack to spare."""
    s = slack_s(p, m)
    if s is None:
        return None
    return s >= 0 and m.work >= m.elapsed * float(p.duration_s) / float(p.deadline_s) - p.gap_s
