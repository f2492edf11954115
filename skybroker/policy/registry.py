"""Policy names -> factories, with "did you mean" on a miss.

`policy/` imports nothing of the broker, so this is its own tiny registry (difflib), not
`skybroker.utils.registry`. Policy modules register themselves at import with
:func:`register_policy`; every module of this package is imported on the first lookup, so a new
policy module (e.g. the "best" policy) plugs in by calling ``register_policy`` at module level,
without editing this file.

``optimum`` is deliberately not a policy: it is omniscient (it reads the whole trace), so the
replay engine calls ``skybroker.policy.optimum`` separately when that module exists.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterable

_FACTORIES: dict[str, Callable[..., object]] = {}
_ALIASES: dict[str, str] = {}
_DESCRIPTIONS: dict[str, str] = {}
_LOADED = False
_BROKEN: dict[str, str] = {}  # module -> import error, reported with unknown-name errors
# Modules that are not policies (or are not to be imported by discovery).
_SKIP = {"base", "registry", "optimum"}


class UnknownPolicyError(KeyError, ValueError):
    """An unknown policy name; the message suggests the closest known one."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def register_policy(
    name: str,
    factory: Callable[..., object],
    aliases: Iterable[str] = (),
    description: str = "",
) -> Callable[..., object]:
    """Register ``factory(**params) -> policy`` under ``name`` (and ``aliases``)."""
    key = name.lower()
    _FACTORIES[key] = factory
    _DESCRIPTIONS[key] = description or (factory.__doc__ or "").strip().split("\n")[0]
    for a in aliases:
        _ALIASES[a.lower()] = key
    return factory


def _discover() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    pkg = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in _SKIP and not info.name.startswith("_"):
            try:
                importlib.import_module(f"{__package__}.{info.name}")
            except Exception as e:  # noqa: BLE001 - one broken module must not hide the others
                _BROKEN[info.name] = f"{type(e).__name__}: {e}"


def policy_names(include_aliases: bool = False) -> list[str]:
    """Registered policy names, sorted (with aliases if asked)."""
    _discover()
    names = set(_FACTORIES)
    if include_aliases:
        names |= set(_ALIASES)
    return sorted(names)


def policy_aliases() -> dict[str, str]:
    """alias -> canonical name."""
    _discover()
    return dict(_ALIASES)


def describe_policies() -> dict[str, str]:
    """canonical name -> one-line description, for help texts."""
    _discover()
    return {k: _DESCRIPTIONS[k] for k in sorted(_FACTORIES)}


def canonical_name(name: str) -> str:
    """Resolve aliases (``up`` -> ``uniform_progress``); raise with a suggestion on a miss."""
    _discover()
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _FACTORIES:
        known = sorted(set(_FACTORIES) | set(_ALIASES))
        hits = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
        hint = f" Did you mean {hits[0]!r}?" if hits else ""
        broken = "".join(f" (policy module {m!r} failed to import: {err})"
                         for m, err in sorted(_BROKEN.items()))
        raise UnknownPolicyError(
            f"Unknown policy {name!r}.{hint} Known: {', '.join(sorted(_FACTORIES))}.{broken}"
        )
    return key


def get_policy(name: str, **params: object) -> object:
    """A fresh policy object for ``name`` (an alias works too)."""
    return _FACTORIES[canonical_name(name)](**params)
