"""Parsing of human units used on the CLI and in YAML: durations and sizes."""

from __future__ import annotations

import re

_DUR = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([smhd]?)\s*$", re.I)
# Hours per unit, applied as one multiplication so '48h' is exactly 48.0 (going through
# seconds would round some values one unit in the last place below the tick they name).
_HOURS = {"s": 1 / 3600, "m": 1 / 60, "h": 1.0, "d": 24.0, "": 1.0}


def parse_duration_hours(value: str | float | int, field: str = "duration") -> float:
    """'48h', '90m', '2d', '0.2h' or a bare number (hours) -> hours."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a duration like '48h', got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{field}: must be >= 0, got {value}")
        return float(value)
    m = _DUR.match(str(value))
    if not m:
        raise ValueError(
            f"{field}: expected a duration like '48h', '90m', '2d' or a number of hours, got {value!r}"
        )
    unit = m.group(2).lower()
    value = float(m.group(1))
    if unit == "s":
        return value / 3600.0
    if unit == "m":
        return value / 60.0
    return value * _HOURS[unit]
