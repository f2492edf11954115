"""`Resources`: one concrete requirement, the unit the optimizer matches against offers.

Alternatives (`any_of`, `ordered`, accelerator sets/lists) are expanded by the task parser
into several `Resources`, so each instance holds at most one accelerator and plain,
normalized values: consumers never re-parse "4+" or "A100:8".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from skybroker.task import fields as F
from skybroker.task.accelerators import SINGLE, parse_accelerators
from skybroker.task.location import Loc
from skybroker.task.schema import normalize_cloud


@dataclass(frozen=True)
class Resources:
    cloud: str | None = None
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    accelerators: dict[str, float] | None = None
    cpus: str | None = None
    memory: str | None = None
    use_spot: bool = False
    disk_size: int | None = None
    disk_tier: str | None = None
    image_id: str | dict[str, str] | None = None
    ports: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    job_recovery: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Normalize values given from Python (Resources(cpus=4, accelerators="A100:8")) the
        # same way the YAML parser does; already-normalized values pass through unchanged.
        def loc(name: str) -> Loc:
            return Loc(path=f"resources.{name}")

        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if self.cloud is not None:
            try:
                put("cloud", normalize_cloud(str(self.cloud))[0])
            except ValueError as e:
                raise loc("cloud").error(str(e)) from None
        for name in ("region", "zone", "instance_type"):
            put(name, F.parse_str(getattr(self, name), loc(name)))
        put("accelerators", _one_accelerator(self.accelerators, loc("accelerators")))
        put("cpus", F.parse_amount(self.cpus, loc("cpus"), "vCPUs", sizes=False))
        put("memory", F.parse_amount(self.memory, loc("memory"), "GiB", sizes=True))
        put("use_spot", F.parse_use_spot(self.use_spot, loc("use_spot")))
        put("disk_size", F.parse_disk_size(self.disk_size, loc("disk_size")))
        put("disk_tier", F.parse_disk_tier(self.disk_tier, loc("disk_tier")))
        put("image_id", F.parse_image_id(self.image_id, loc("image_id")))
        put("ports", F.parse_ports(self.ports, loc("ports")))
        put("labels", F.parse_labels(self.labels, loc("labels")))
        jr = self.job_recovery
        if jr is not None and not _is_normalized_recovery(jr):
            jr = F.parse_job_recovery(jr, loc("job_recovery"), [])
        put("job_recovery", jr)

    @classmethod
    def _normalized(cls, **values: Any) -> Resources:
        """Build from values the parser already normalized (skips re-validation)."""
        obj = object.__new__(cls)
        for f in _FIELDS:
            value = values[f.name] if f.name in values else _default(f)
            object.__setattr__(obj, f.name, value)
        return obj

    # ---- queries used by the optimizer -------------------------------------------------

    def cpus_requirement(self) -> tuple[float, bool] | None:
        """(vCPUs, at_least) or None when unconstrained."""
        return F.amount_requirement(self.cpus)

    def memory_requirement(self) -> tuple[float, bool] | None:
        """(GiB, at_least) or None when unconstrained."""
        return F.amount_requirement(self.memory)

    def accelerator(self) -> tuple[str, float] | None:
        """(name, count) or None. Match the name case-insensitively against catalogs."""
        if not self.accelerators:
            return None
        ((name, count),) = self.accelerators.items()
        return name, count

    @property
    def infra(self) -> str | None:
        """'aws/us-east-1/us-east-1a'-style location, '*' for unpinned parts."""
        parts = [self.cloud or "*", self.region or "*", self.zone or "*"]
        while parts and parts[-1] == "*":
            parts.pop()
        return "/".join(parts) or None

    def copy(self, **changes: Any) -> Resources:
        return dataclasses.replace(self, **changes)

    # ---- serialization -----------------------------------------------------------------

    def to_yaml_config(self) -> dict[str, Any]:
        """The canonical YAML mapping (defaults omitted); parses back to an equal object."""
        out: dict[str, Any] = {}
        for name in ("cloud", "region", "zone", "instance_type"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.accelerators:
            out["accelerators"] = {k: F.number(v) for k, v in self.accelerators.items()}
        for name in ("cpus", "memory"):
            text = getattr(self, name)
            if text is not None:
                out[name] = text if text.endswith("+") else F.number(float(text))
        if self.use_spot:
            out["use_spot"] = True
        for name in ("disk_size", "disk_tier"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.image_id is not None:
            out["image_id"] = (
                dict(self.image_id) if isinstance(self.image_id, dict) else self.image_id
            )
        if self.ports:
            out["ports"] = list(self.ports)
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.job_recovery is not None:
            out["job_recovery"] = _recovery_config(self.job_recovery)
        return out

    @classmethod
    def from_yaml_config(cls, config: dict[str, Any] | None) -> Resources:
        """One `resources` mapping -> Resources; alternatives belong to a Task instead."""
        from skybroker.task.resources_parse import parse_resources

        alternatives, _ordered = parse_resources(config, Loc(path="resources"), [])
        if len(alternatives) != 1:
            raise Loc(path="resources").error(
                f"describes {len(alternatives)} alternatives; use Task.from_yaml_config"
            )
        return alternatives[0]

    def __hash__(self) -> int:
        import json  # only hashing needs it; keep `import skybroker.task` light

        return hash(json.dumps(self.to_yaml_config(), sort_keys=True, default=str))

    def __str__(self) -> str:
        parts = [self.infra or "any cloud"]
        if self.instance_type:
            parts.append(self.instance_type)
        acc = self.accelerator()
        if acc:
            parts.append(f"{acc[0]}:{F.fmt_number(acc[1])}")
        if self.cpus:
            parts.append(f"cpus={self.cpus}")
        if self.memory:
            parts.append(f"mem={self.memory}")
        parts.append("spot" if self.use_spot else "on-demand")
        return " ".join(parts)


_FIELDS = dataclasses.fields(Resources)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _one_accelerator(value: Any, loc: Loc) -> dict[str, float] | None:
    alternatives, kind = parse_accelerators(value, loc)
    if not alternatives:
        return None
    if kind != SINGLE:
        raise loc.error(
            "a Resources holds one accelerator; give alternatives to the Task "
            "(accelerator sets/lists, any_of, ordered)"
        )
    ((name, count),) = alternatives
    return {name: count}


def _is_normalized_recovery(jr: Any) -> bool:
    return isinstance(jr, dict) and set(jr) == {
        "strategy", "max_restarts_on_errors", "deadline", "duration", "restart_overhead"
    }  # fmt: skip


def _hours_text(hours: float) -> str | float:
    """'60h' when whole; a bare number of hours otherwise, which parses back exactly
    (a unit would go through seconds and could come back one ulp off)."""
    return f"{int(hours)}h" if float(hours).is_integer() else float(hours)


def _recovery_config(jr: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if jr.get("strategy") is not None:
        out["strategy"] = jr["strategy"]
    if jr.get("max_restarts_on_errors"):
        out["max_restarts_on_errors"] = jr["max_restarts_on_errors"]
    for key in ("deadline", "duration", "restart_overhead"):
        if jr.get(key) is not None:
            out[key] = _hours_text(jr[key])
    return out
