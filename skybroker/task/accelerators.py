"""The many spellings of `accelerators`, reduced to (name, count) alternatives.

Real files write `A100:8`, `{A100: 8}`, `{A100:1, T4:1}` (no space after the colon, so YAML
yields the key "A100:1" with a null value), `[V100, T4:1]`, lists of `- T4: 1` maps, a bare
`V100`, null counts (1) and fractional ones (`K80:0.5`). A mapping of several is an
unordered set of alternatives, a list is an ordered preference, as in SkyPilot.
"""

from __future__ import annotations

import math
from typing import Any

from skybroker.task.location import Loc

NONE, SINGLE, SET, LIST = "none", "single", "set", "list"


def _count(raw: Any, loc: Loc) -> float:
    if raw is None:
        return 1.0
    if isinstance(raw, bool):
        raise loc.error(f"count must be a positive number, got {raw!r}")
    if isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise loc.error(f"count must be a positive number, got {raw!r}") from None
    elif isinstance(raw, (int, float)):
        value = float(raw)
    else:
        raise loc.error(f"count must be a positive number, got {raw!r}")
    if not math.isfinite(value) or value <= 0:
        raise loc.error(f"count must be a positive number, got {raw!r}")
    return value


def _name(raw: Any, loc: Loc) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise loc.error(f"expected an accelerator name like 'A100' or 'A100:8', got {raw!r}")
    name = raw.strip()
    if any(c.isspace() or c in "{}[],:" for c in name):
        raise loc.error(f"invalid accelerator name {name!r}; write it as 'A100' or 'A100:8'")
    return name


def _from_text(text: str, loc: Loc) -> tuple[str, float]:
    """'A100' -> ('A100', 1); 'A100:8' -> ('A100', 8); 'K80:0.5'."""
    name, sep, count = text.strip().partition(":")
    if sep and ":" in count:
        raise loc.error(f"expected 'NAME' or 'NAME:COUNT', got {text!r}")
    return _name(name, loc), _count(count if sep else None, loc)


def _from_entry(key: Any, value: Any, loc: Loc) -> tuple[str, float]:
    """One mapping entry: {A100: 8}, {V100: null}, or {"A100:1": null} from `{A100:1}`."""
    if isinstance(key, str) and ":" in key:
        if value is not None:
            raise loc.error(f"{key!r} already has a count; got a second one: {value!r}")
        return _from_text(key, loc)
    return _name(key, loc), _count(value, loc)


def parse_accelerators(value: Any, loc: Loc) -> tuple[list[tuple[str, float]], str]:
    """-> (alternatives, kind) where kind is NONE, SINGLE, SET (unordered) or LIST."""
    if value is None:
        return [], NONE
    out: list[tuple[str, float]] = []
    if isinstance(value, str):
        text = value.strip()
        if text and text[0] in "{[" and text[-1] in "}]":  # a quoted set/list
            kind = SET if text[0] == "{" else LIST
            out = [_from_text(p, loc) for p in text[1:-1].split(",") if p.strip()]
            if not out:
                raise loc.error(f"no accelerator in {value!r}")
        else:
            kind, out = SINGLE, [_from_text(text, loc)]
    elif isinstance(value, dict):
        if not value:
            raise loc.error("empty mapping; remove the key or name an accelerator")
        kind = SET
        out = [_from_entry(k, v, loc.at(value, k)) for k, v in value.items()]
    elif isinstance(value, list):
        if not value:
            raise loc.error("empty list; remove the key or name an accelerator")
        kind = LIST
        for i, item in enumerate(value):
            sub = loc.at(value, i)
            if isinstance(item, dict):
                if len(item) != 1:
                    raise sub.error(f"each list item names one accelerator, got {dict(item)!r}")
                ((k, v),) = item.items()
                out.append(_from_entry(k, v, sub))
            elif isinstance(item, str):
                out.append(_from_text(item, sub))
            else:
                raise sub.error(f"expected 'NAME' or 'NAME:COUNT', got {item!r}")
    else:
        raise loc.error(
            f"expected an accelerator like 'A100:8', a mapping or a list, got {value!r}"
        )
    unique: list[tuple[str, float]] = []
    for acc in out:
        if acc not in unique:
            unique.append(acc)
    return unique, (SINGLE if len(unique) == 1 else kind)
