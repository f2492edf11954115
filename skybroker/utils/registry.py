"""Name lookup with "did you mean" suggestions (clouds, policies, strategies, YAML keys)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(name: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Close matches of `name` among `choices`, case-insensitively, best first."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=cutoff)
    return [lowered[h] for h in hits]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' Did you mean 'x'?' or '' — ready to append to an error message."""
    hits = suggest(name, choices)
    return f" Did you mean {hits[0]!r}?" if hits else ""


class Registry:
    """A small name -> object registry whose misses say what was meant."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, object] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, obj: object, aliases: Iterable[str] = ()) -> object:
        self._items[name.lower()] = obj
        for a in aliases:
            self._aliases[a.lower()] = name.lower()
        return obj

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> object:
        key = name.lower()
        key = self._aliases.get(key, key)
        if key not in self._items:
            from skybroker.errors import SkyError

            known = self.names() + sorted(self._aliases)
            raise SkyError(
                f"Unknown {self.kind} {name!r}.{did_you_mean(name, known)}"
                f" Known: {', '.join(self.names())}."
            )
        return self._items[key]
