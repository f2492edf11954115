"""The cloud-agnostic failover loop: walk a plan's placements until one launches.

Why it exists apart from any cloud: provisioners only raise typed errors
(`skybroker.errors`); this loop turns each error into a *block* of the right breadth, so a
stock-out of one instance type in one zone does not hide the same type in the next zone, nor
on-demand of that type, while bad credentials skip the whole cloud at once.

Blocks (None = any):
- CapacityError(scope="zone")          -> this instance type, this zone, this market
- CapacityError(scope="region")        -> this instance type, this region, this market
- CapacityError(scope="instance_type") -> this instance type, whole cloud, this market
- CapacityError(scope="cloud")         -> whole cloud, this market
- QuotaError                           -> this region, this market (clouds meter spot apart)
- CredentialsError                     -> the whole cloud
- InvalidRequestError                  -> this instance type, whole cloud, both markets
- ThrottledError / other ProvisionError -> this zone (for this launch only)
- NotSupportedError (e.g. SDK missing)  -> the whole cloud

Failed offers are also remembered for a few minutes across launches in
`<home>/failover_memory.json`, so the next launch tries them last (not never: capacity returns).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from skybroker import errors
from skybroker.clouds import registry as _registry

# Attempt outcomes.
UP, CAPACITY, QUOTA, CREDENTIALS, INVALID, THROTTLED, ERROR, UNSUPPORTED = (
    "UP", "CAPACITY", "QUOTA", "CREDENTIALS", "INVALID", "THROTTLED", "ERROR", "UNSUPPORTED",
)
# Outcomes no retry can fix (until the user changes something): quota, credentials, an invalid
# request, a cloud this broker cannot drive. Capacity, throttling and other errors can pass.
PERMANENT = (QUOTA, CREDENTIALS, INVALID, UNSUPPORTED)
MEMORY_FILE = "failover_memory.json"
DEFAULT_REMEMBER_S = 300.0


@dataclass(frozen=True)
class Block:
    """A blocked slice of the offer space; None fields match anything."""

    cloud: str
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    spot: bool | None = None
    reason: str = ""

    def matches(self, p: Any) -> bool:
        o = p.offer
        return (
            self.cloud == o.cloud
            and self.region in (None, o.region)
            and self.zone in (None, o.zone)
            and self.instance_type in (None, o.instance_type)
            and self.spot in (None, bool(p.spot))
        )

    def describe(self) -> str:
        parts = [self.cloud, self.region or "", self.zone or "", self.instance_type or ""]
        where = "/".join(x for x in parts if x)
        market = "" if self.spot is None else (" spot" if self.spot else " on-demand")
        return f"{where}{market}"


@dataclass
class Attempt:
    """One placement tried (or skipped) during a launch, and what happened."""

    placement: Any
    outcome: str
    error: str = ""
    duration_s: float = 0.0
    round: int = 1

    @property
    def where(self) -> str:
        o = self.placement.offer
        return "/".join(x for x in (o.cloud, o.region, o.zone or "") if x)

    def line(self) -> str:
        """One line per attempt, for progress output while the loop runs."""
        o = self.placement.offer
        market = "spot" if self.placement.spot else "on-demand"
        msg = f": {self.error}" if self.error else ""
        return f"{self.outcome:<11} {self.where} {o.instance_type} ({market}){msg}"


@dataclass
class Backoff:
    """Exponential backoff with jitter for --retry-until-up rounds."""

    initial_s: float = 10.0
    max_s: float = 300.0
    factor: float = 2.0
    jitter: float = 0.2
    _next: float = field(default=0.0, repr=False)

    def next_delay(self) -> float:
        self._next = self.initial_s if self._next == 0 else min(self._next * self.factor, self.max_s)
        return self._next * (1 + random.uniform(-self.jitter, self.jitter))


def _block_for(p: Any, exc: errors.SkyError) -> tuple[str, Block]:
    """The outcome label and the block an error implies for placement `p`."""
    o, spot = p.offer, bool(p.spot)
    msg = str(exc) + (f" ({exc.hint})" if exc.hint else "")
    if isinstance(exc, errors.NotSupportedError):  # e.g. the cloud's SDK is not installed
        return UNSUPPORTED, Block(o.cloud, reason=msg)
    if isinstance(exc, errors.CredentialsError):
        return CREDENTIALS, Block(o.cloud, reason=msg)
    if isinstance(exc, errors.QuotaError):
        return QUOTA, Block(o.cloud, o.region, spot=spot, reason=msg)
    if isinstance(exc, errors.InvalidRequestError):
        return INVALID, Block(o.cloud, instance_type=o.instance_type, reason=msg)
    if isinstance(exc, errors.CapacityError):
        scope = exc.scope
        if scope == "cloud":
            return CAPACITY, Block(o.cloud, spot=spot, reason=msg)
        if scope == "instance_type":
            return CAPACITY, Block(o.cloud, instance_type=o.instance_type, spot=spot, reason=msg)
        if scope == "region" or o.zone is None:
            return CAPACITY, Block(o.cloud, o.region, None, o.instance_type, spot, reason=msg)
        return CAPACITY, Block(o.cloud, o.region, o.zone, o.instance_type, spot, reason=msg)
    outcome = THROTTLED if isinstance(exc, errors.ThrottledError) else ERROR
    return outcome, Block(o.cloud, o.region, o.zone, o.instance_type, spot, reason=msg)


# ---- memory of failed offers across launches ----


def _memory_path():
    from skybroker.config import home

    return home() / MEMORY_FILE


def remember_seconds() -> float:
    """How long failed offers are tried last (config `failover.remember_seconds`)."""
    from skybroker.config import load_config

    try:
        return float((load_config().get("failover") or {}).get("remember_seconds", DEFAULT_REMEMBER_S))
    except (TypeError, ValueError):
        return DEFAULT_REMEMBER_S


def load_memory(now: float | None = None) -> list[Block]:
    """Unexpired remembered blocks (a missing or corrupt file is an empty memory)."""
    now = time.time() if now is None else now
    try:
        rows = json.loads(_memory_path().read_text())
    except (OSError, ValueError):
        return []
    out = []
    for r in rows if isinstance(rows, list) else []:
        try:
            if float(r["expires"]) > now:
                out.append(Block(**{k: r.get(k) for k in ("cloud", "region", "zone", "instance_type", "spot")},
                                 reason=str(r.get("reason", ""))))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _write_memory(update: Callable[[list[dict]], list[dict]]) -> None:
    """Read-modify-write the memory file under a lock, atomically replaced."""
    path = _memory_path()
    lock = path.with_suffix(".lock")
    with open(lock, "a+") as lf:
        with contextlib.suppress(ImportError, OSError):
            import fcntl

            fcntl.flock(lf, fcntl.LOCK_EX)
        try:
            rows = json.loads(path.read_text())
            rows = rows if isinstance(rows, list) else []
        except (OSError, ValueError):
            rows = []
        now = time.time()
        rows = [r for r in rows if isinstance(r, dict) and float(r.get("expires", 0)) > now]
        rows = update(rows)
        tmp = path.with_suffix(f".tmp{os.getpid()}-{uuid.uuid4().hex[:8]}")
        tmp.write_text(json.dumps(rows, indent=1))
        os.replace(tmp, path)


def remember(blocks: Iterable[Block], ttl_s: float | None = None) -> None:
    """Persist blocks so the next launches try those offers last."""
    blocks = list(blocks)
    if not blocks:
        return
    ttl = remember_seconds() if ttl_s is None else ttl_s
    expires = time.time() + ttl

    def upd(rows: list[dict]) -> list[dict]:
        keys = {tuple(asdict(b)[k] for k in ("cloud", "region", "zone", "instance_type", "spot")) for b in blocks}
        rows = [r for r in rows if (r.get("cloud"), r.get("region"), r.get("zone"),
                                    r.get("instance_type"), r.get("spot")) not in keys]
        return rows + [dict(asdict(b), expires=expires) for b in blocks]

    _write_memory(upd)


def forget(placement: Any) -> None:
    """Drop remembered blocks a successful launch disproved."""
    with contextlib.suppress(OSError):
        _write_memory(lambda rows: [r for r in rows if not Block(
            **{k: r.get(k) for k in ("cloud", "region", "zone", "instance_type", "spot")}).matches(placement)])


class _Walk:
    """The plan's placements still to try, in order (recently failed offers last).

    On a columnar plan (`skybroker.optimizer.Plan`: `table` columns + `spot`), blocks drop
    rows with a few numpy comparisons, so a blocked cloud's tens of thousands of rows are
    skipped without building a Placement each; any other sequence is checked one by one.
    """

    def __init__(self, plan: Any, placements: Sequence[Any], memory: Sequence[Block],
                 blocks: Sequence[Block]) -> None:
        self.placements, self.blocks, self.skipped, self.pos = placements, list(blocks), 0, 0
        self.cols = _columns(plan, len(placements))
        if self.cols is not None:
            import numpy as np

            order = np.arange(len(placements))
            if memory:
                stale = self._mask(memory)
                order = np.concatenate([order[~stale], order[stale]])
            self.order: Any = order
            self._drop(self.blocks)
        else:
            stale = [i for i in range(len(placements)) if memory and any(b.matches(placements[i]) for b in memory)]
            fresh = sorted(set(range(len(placements))) - set(stale))
            self.order = fresh + stale

    def _mask(self, blocks: Sequence[Block]) -> Any:
        import numpy as np

        c = self.cols
        out = np.zeros(len(c["cloud"]), dtype=bool)
        for b in blocks:
            m = c["cloud"] == b.cloud
            for key in ("region", "zone", "instance_type"):
                if getattr(b, key) is not None:
                    m &= c[key] == getattr(b, key)
            if b.spot is not None:
                m &= c["spot"] == bool(b.spot)
            out |= m
        return out

    def _drop(self, blocks: Sequence[Block]) -> None:
        if blocks and self.cols is not None:
            rest = self.order[self.pos:]
            bad = self._mask(blocks)[rest]
            self.skipped += int(bad.sum())
            self.order, self.pos = rest[~bad], 0

    def block(self, b: Block) -> None:
        self.blocks.append(b)
        self._drop([b])

    def next(self) -> Any | None:
        while self.pos < len(self.order):
            p = self.placements[int(self.order[self.pos])]
            self.pos += 1
            if self.cols is None and any(b.matches(p) for b in self.blocks):
                self.skipped += 1
                continue
            return p
        return None


def _columns(plan: Any, n: int) -> dict[str, Any] | None:
    """cloud/region/zone/instance_type/spot arrays of a columnar plan, else None."""
    table, spot = getattr(plan, "table", None), getattr(plan, "spot", None)
    if table is None or spot is None:
        return None
    try:
        import numpy as np

        cols = {k: np.asarray(getattr(table, k)) for k in ("cloud", "region", "zone", "instance_type")}
        cols["spot"] = np.asarray(spot, dtype=bool)
    except Exception:  # not the table we know: check placements one by one
        return None
    return cols if all(len(v) == n for v in cols.values()) else None


# ---- the loop ----


def format_attempts(attempts: Sequence[Attempt], skipped: int = 0) -> str:
    """A plain-text table of tried placements; skipped (blocked) ones are only counted."""
    head = ("#", "CLOUD", "REGION", "ZONE", "INSTANCE TYPE", "MARKET", "OUTCOME", "ERROR")
    rows = [head]
    for i, a in enumerate(attempts, 1):
        o = a.placement.offer
        err = a.error if len(a.error) <= 90 else a.error[:87] + "..."
        rows.append((str(i), o.cloud, o.region, o.zone or "-", o.instance_type,
                     "spot" if a.placement.spot else "on-demand", a.outcome, err))
    widths = [max(len(r[c]) for r in rows) for c in range(len(head) - 1)]
    lines = ["  ".join(r[c].ljust(widths[c]) for c in range(len(head) - 1)) + "  " + r[-1]
             for r in rows]
    if skipped:
        lines.append(f"({skipped} more placement(s) skipped: blocked by the failures above)")
    return "\n".join(line.rstrip() for line in lines)


def _cleanup(prov: Any, spec: Any) -> None:
    """Best effort: a failed launch may have created some nodes; terminate them by tag."""
    from skybroker.clouds.base import ClusterInfo

    info = ClusterInfo(spec.cluster_name, spec.cloud, spec.region, spec.zone,
                       spec.instance_type, spec.spot)
    with contextlib.suppress(errors.ProvisionError, NotImplementedError):
        prov.terminate(info)


def provision_with_failover(
    plan: Any,
    make_spec: Callable[[Any], Any],
    *,
    on_attempt: Callable[[Attempt], None] | None = None,
    retry_until_up: bool = False,
    get_provisioner: Callable[[str], Any] = _registry.get_provisioner,
    before_attempt: Callable[[Any, Any], None] | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_rounds: int | None = None,
) -> tuple[Any, Any, list[Attempt]]:
    """Launch on the first placement of `plan` that works; return (ClusterInfo, Placement, attempts).

    `attempts` lists the placements actually tried (blocked ones are skipped silently and
    counted in the failure table). `on_attempt` is called after each try, for a progress
    line (`Attempt.line()`). `before_attempt(placement, spec)` runs just before each launch
    call: record the region in the state DB there, so an interrupted launch can be
    reconciled. Non-cloud exceptions (bugs, KeyboardInterrupt) propagate; every resource is
    tagged, so `status --refresh` / `down` find what they left. Raises
    ResourcesUnavailableError with the attempts table when nothing launches (after
    `max_rounds` rounds with retry_until_up; rounds are separated by `backoff`).
    """
    placements = getattr(plan, "placements", plan)
    if not len(placements):
        raise errors.ResourcesUnavailableError("The plan has no feasible placement.")
    memory = load_memory()
    backoff = backoff or Backoff()
    attempts: list[Attempt] = []
    permanent: list[Block] = []  # credentials / invalid: never worth a second round
    provisioners: dict[str, Any] = {}
    rnd = 0
    while True:
        rnd += 1
        walk = _Walk(plan, placements, memory, permanent)
        while (p := walk.next()) is not None:
            cloud = p.offer.cloud
            t0 = time.monotonic()
            spec = None
            try:
                if cloud not in provisioners:
                    provisioners[cloud] = get_provisioner(cloud)
                prov = provisioners[cloud]
                spec = make_spec(p)
                if not getattr(spec, "broker_id", "x"):
                    from skybroker.clouds.clients import broker_id

                    spec.broker_id = broker_id()
                if before_attempt is not None:
                    before_attempt(p, spec)
                info = prov.launch(spec)
            except (errors.ProvisionError, errors.NotSupportedError) as e:
                outcome, block = _block_for(p, e)
                a = Attempt(p, outcome, block.reason or type(e).__name__, time.monotonic() - t0, rnd)
                attempts.append(a)
                walk.block(block)
                if outcome in (CREDENTIALS, INVALID, UNSUPPORTED):
                    permanent.append(block)
                if outcome not in (THROTTLED, ERROR, CREDENTIALS, UNSUPPORTED):
                    with contextlib.suppress(OSError):
                        remember([block])
                if spec is not None and outcome not in (CREDENTIALS, UNSUPPORTED):
                    _cleanup(provisioners[cloud], spec)
                if on_attempt is not None:
                    on_attempt(a)
                continue
            a = Attempt(p, UP, "", time.monotonic() - t0, rnd)
            attempts.append(a)
            if on_attempt is not None:
                on_attempt(a)
            forget(p)
            return info, p, attempts
        skipped = walk.skipped
        if not retry_until_up or (max_rounds is not None and rnd >= max_rounds):
            break
        if _Walk(plan, placements, [], permanent).next() is None:
            break  # only credentials/invalid/unsupported blocks remain: retrying cannot help
        memory = []  # later rounds walk the plan in its own order
        sleep(backoff.next_delay())
    exc = errors.ResourcesUnavailableError(
        f"Failed to launch on any of {len(placements)} placement(s) ({len(attempts)} attempt(s)"
        f"{f', {rnd} rounds' if rnd > 1 else ''}):\n{format_attempts(attempts, skipped)}",
        hint="Try other clouds/regions, relax the resources, or use --retry-until-up.",
    )
    exc.attempts = tuple(attempts)
    raise exc


_FIXES = {
    QUOTA: "ask the cloud for a quota increase (or allow another region/cloud)",
    CREDENTIALS: "fix the cloud's credentials (`sky check`)",
    INVALID: "change the instance type, zone or image the task asks for",
    UNSUPPORTED: "install the cloud's support (`sky check` says what is missing)",
}


def permanent_failure(exc: BaseException, limit: int = 4) -> tuple[str, str] | None:
    """(per-placement reasons, what to change) when every placement a launch tried failed
    with a PERMANENT error; None when any failed otherwise (capacity may come back) or
    nothing was tried."""
    attempts = list(getattr(exc, "attempts", ()) or ())
    if not attempts or any(a.outcome not in PERMANENT for a in attempts):
        return None
    seen: dict[tuple[str, str], list[str]] = {}
    for a in attempts:
        o = a.placement.offer
        seen.setdefault((a.outcome, a.error), []).append(
            f"{a.where} {o.instance_type} ({'spot' if a.placement.spot else 'on-demand'})")
    reasons = [f"{', '.join(wh)}: {out} {err}".rstrip() for (out, err), wh in seen.items()]
    if len(reasons) > limit:
        reasons = reasons[:limit] + [f"and {len(reasons) - limit} more"]
    fixes = [_FIXES[o] for o in PERMANENT if any(a.outcome == o for a in attempts)]
    return "; ".join(reasons), "; ".join(fixes)
