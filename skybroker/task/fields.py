"""Normalizers for single `resources` fields: raw YAML value -> canonical value.

Each takes the raw value and a `Loc` and either returns the canonical form stored on
`Resources` or raises `loc.error(...)`. They accept what real task files contain (numbers
where strings are documented, `4+`, `K80:0.5`, `ports: 8080`, units like `32GB`) and
normalize it once, so consumers never re-parse.
"""

from __future__ import annotations

import math
import re
from typing import Any

from skybroker.task.location import Loc, describe
from skybroker.task.schema import (
    DISK_TIERS,
    JOB_RECOVERY_KEYS,
    JOB_RECOVERY_UNSUPPORTED,
    unknown_key_message,
)
from skybroker.task.yaml_loader import scalar_text
from skybroker.utils.registry import did_you_mean
from skybroker.utils.units import parse_duration_hours

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgtp]i?b?)?\s*(\+)?\s*$", re.I)
# Size units in GiB; like SkyPilot, 'GB' means GiB (powers of 1024).
_GIB = {
    f"{unit}{suffix}": 1024.0**power
    for unit, power in (("k", -2), ("m", -1), ("g", 0), ("t", 1), ("p", 2))
    for suffix in ("", "b", "i", "ib")
}
_GIB[""] = 1.0


def fmt_number(x: float) -> str:
    """4.0 -> '4', 0.5 -> '0.5' (the canonical text of a count or size)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def number(x: float) -> int | float:
    """An integral float as int (8.0 -> 8), so YAML output reads naturally."""
    return int(x) if float(x).is_integer() else float(x)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_amount(value: Any, loc: Loc, unit: str, sizes: bool) -> str | None:
    """cpus / memory: 4, 0.5, '4', '4+', (memory: '32GB+') -> '4' / '4+' / '32+'."""
    if value is None:
        return None
    if _is_num(value):
        amount, plus = float(value), False
    else:
        m = _SIZE.match(str(value))
        if not m or (m.group(2) and not sizes) or (m.group(2) or "").lower() not in _GIB:
            example = "'32', '32+' or '32GB+'" if sizes else "'4' or '4+'"
            raise loc.error(f"expected a number of {unit} like {example}, got {value!r}")
        amount = float(m.group(1)) * _GIB[(m.group(2) or "").lower()]
        plus = bool(m.group(3))
    if not math.isfinite(amount) or amount <= 0:
        raise loc.error(f"must be a positive number of {unit}, got {value!r}")
    return fmt_number(amount) + ("+" if plus else "")


def amount_requirement(text: str | None) -> tuple[float, bool] | None:
    """'4+' -> (4.0, True); '4' -> (4.0, False); None -> None."""
    if text is None:
        return None
    plus = text.endswith("+")
    return float(text.rstrip("+")), plus


def parse_use_spot(value: Any, loc: Loc) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise loc.error(f"must be true or false, got {value!r}")
    return value


def parse_disk_size(value: Any, loc: Loc) -> int | None:
    """GB as an int; '256GB' and '1TB' are accepted too."""
    if value is None:
        return None
    if _is_num(value):
        gb = float(value)
    else:
        m = _SIZE.match(str(value))
        if not m or m.group(3) or (m.group(2) or "").lower() not in _GIB:
            raise loc.error(f"expected a size in GB like 256 or '1TB', got {value!r}")
        gb = float(m.group(1)) * _GIB[(m.group(2) or "").lower()]
    if not math.isfinite(gb) or gb <= 0 or not gb.is_integer():
        raise loc.error(f"must be a positive whole number of GB, got {value!r}")
    return int(gb)


def parse_disk_tier(value: Any, loc: Loc) -> str | None:
    if value is None:
        return None
    tier = str(value).lower()
    if tier not in DISK_TIERS:
        raise loc.error(
            f"unknown disk tier {value!r}.{did_you_mean(tier, DISK_TIERS)}"
            f" Choose one of: {', '.join(DISK_TIERS)}"
        )
    return tier


def parse_str(value: Any, loc: Loc, what: str = "a string") -> str | None:
    """Strings, with numbers accepted (YAML reads `zone: 1` as an int)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            raise loc.error("must not be empty; remove the key to leave it unset")
        return value.strip()
    if _is_num(value):
        return str(value)
    raise loc.error(f"expected {what}, got {describe(value)} {value!r}")


def parse_image_id(value: Any, loc: Loc) -> str | dict[str, str] | None:
    """An image (AMI, GCP image, 'docker:<image>') or a {region: image} mapping."""
    if value is None or isinstance(value, str):
        return parse_str(value, loc)
    if isinstance(value, dict):
        if not value:
            raise loc.error("the per-region mapping is empty")
        out: dict[str, str] = {}
        for region, image in value.items():
            sub = loc.at(value, region)
            if not isinstance(region, str):
                raise sub.error(f"region names must be strings, got {region!r}")
            img = parse_str(image, sub.key(region), "an image id")
            if img is None:
                raise sub.key(region).error("image id is missing")
            out[region] = img
        return out
    raise loc.error(f"expected an image id or a {{region: image_id}} mapping, got {value!r}")


def _port(text: str, loc: Loc, raw: Any) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise loc.error(f"expected a port (1-65535) or range like '8080-8090', got {raw!r}")
    return int(text)


def parse_ports(value: Any, loc: Loc) -> list[str]:
    """8080 / '8080' / '8080-8090' / a list of those -> ['8080', '8080-8090']."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for i, raw in enumerate(items):
        sub = loc.at(value, i) if isinstance(value, list) else loc
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise sub.error(f"expected a port or port range, got {raw!r}")
        text = str(raw).strip()
        if "-" in text:
            lo_text, _, hi_text = text.partition("-")
            lo, hi = _port(lo_text.strip(), sub, raw), _port(hi_text.strip(), sub, raw)
            if lo > hi:
                raise sub.error(f"port range {raw!r} ends before it starts")
            canon = f"{lo}-{hi}" if lo != hi else str(lo)
        else:
            canon = str(_port(text, sub, raw))
        if canon not in out:
            out.append(canon)
    return out


def parse_labels(value: Any, loc: Loc) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise loc.error(f"expected a mapping of label -> value, got {value!r}")
    out: dict[str, str] = {}
    for k, v in value.items():
        sub = loc.key(k, value)
        if not isinstance(k, str) or not k:
            quote = (
                " (quote it: YAML reads on/off/yes/no as booleans)" if k in (True, False) else ""
            )
            raise sub.error(f"label names must be non-empty strings, got {k!r}{quote}")
        if isinstance(v, (dict, list)):
            raise sub.error(f"label values must be strings, got {v!r}")
        out[k] = "" if v is None else scalar_text(value, k, v)
    return out


def _hours(value: Any, loc: Loc, positive: bool) -> float | None:
    if value is None:
        return None
    try:
        hours = parse_duration_hours(value, loc.path)
    except ValueError as e:
        raise loc.error(str(e).split(": ", 1)[-1]) from None
    if not math.isfinite(hours) or (positive and hours <= 0):
        raise loc.error(f"must be a positive duration like '60h' or '90m', got {value!r}")
    return hours


def parse_job_recovery(value: Any, loc: Loc, warnings: list[str]) -> dict[str, Any] | None:
    """A strategy name or a mapping -> {strategy, max_restarts_on_errors, deadline,
    duration, restart_overhead} (durations in hours; absent ones are None)."""
    if value is None:
        return None
    raw = {"strategy": value} if isinstance(value, str) else value
    if not isinstance(raw, dict):
        raise loc.error(f"expected a strategy name or a mapping, got {value!r}")
    for key in raw:
        if key in JOB_RECOVERY_UNSUPPORTED:
            warnings.append(loc.key(key, raw).message(JOB_RECOVERY_UNSUPPORTED[key]))
        elif key not in JOB_RECOVERY_KEYS:
            what = "job_recovery"
            raise loc.key(key, raw).error(unknown_key_message(key, JOB_RECOVERY_KEYS, what))
    strategy = raw.get("strategy")
    if strategy is not None:
        if not isinstance(strategy, str) or not strategy.strip():
            raise loc.key("strategy", raw).error(f"expected a strategy name, got {strategy!r}")
        strategy = strategy.strip().upper().replace("-", "_")
    restarts = raw.get("max_restarts_on_errors", 0)
    if restarts is None:
        restarts = 0
    if not isinstance(restarts, int) or isinstance(restarts, bool) or restarts < 0:
        sub = loc.key("max_restarts_on_errors", raw)
        raise sub.error(f"must be a whole number >= 0, got {restarts!r}")
    out = {
        "strategy": strategy,
        "max_restarts_on_errors": restarts,
        "deadline": _hours(raw.get("deadline"), loc.key("deadline", raw), True),
        "duration": _hours(raw.get("duration"), loc.key("duration", raw), True),
        "restart_overhead": _hours(
            raw.get("restart_overhead"), loc.key("restart_overhead", raw), False
        ),
    }
    deadline, duration = out["deadline"], out["duration"]
    if deadline is not None and duration is not None and duration > deadline:
        raise loc.key("duration", raw).error(
            f"the job needs {duration:g}h of work but the deadline is {deadline:g}h: "
            "it cannot finish in time even on on-demand"
        )
    return out
