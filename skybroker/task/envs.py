"""`${VAR}` interpolation, with SkyPilot's semantics plus env-to-env references.

Only the braced form `${NAME}` with a bash-valid name is replaced, and only when NAME is a
task env with a value: anything else (`${HOME}`, `$RANK`, `${SKYPILOT_NODE_RANK}`) is left for
the shell on the node. `--env` overrides replace the YAML values before resolution, so they
win everywhere, including in envs that reference them. An env referencing itself (e.g.
`PATH: ${PATH}:/opt/bin`) is left for the shell, and so are references to it (inlining its
value would leave a `${PATH}` that a second pass would read differently: resolution must be
idempotent for the YAML round trip). A cycle between envs is an error.
"""

from __future__ import annotations

import re
from typing import Any

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvCycleError(ValueError):
    def __init__(self, chain: list[str]) -> None:
        super().__init__(" -> ".join(chain))
        self.chain = chain


def resolve_envs(envs: dict[str, str | None]) -> dict[str, str | None]:
    """Each value with `${OTHER}` references to other envs substituted (recursively)."""
    done: dict[str, str | None] = {}

    def resolve(name: str, stack: list[str]) -> str | None:
        if name in done:
            return done[name]
        value = envs[name]
        if value is None:
            done[name] = None
            return None
        stack = [*stack, name]

        def sub(m: re.Match[str]) -> str:
            ref = m.group(1)
            if ref == name or ref not in envs:
                return m.group(0)
            if ref in stack:
                raise EnvCycleError([*stack[stack.index(ref) :], ref])
            resolved = resolve(ref, stack)
            if resolved is None or any(envs.get(r) is not None for r in VAR.findall(resolved)):
                return m.group(0)
            return resolved

        done[name] = VAR.sub(sub, value)
        return done[name]

    for name in envs:
        resolve(name, [])
    return {name: done[name] for name in envs}


def interpolate(obj: Any, envs: dict[str, str | None]) -> Any:
    """Substitute `${VAR}` in every string of `obj` (mapping keys too), recursively."""
    if isinstance(obj, str):
        if "${" not in obj:
            return obj
        return VAR.sub(lambda m: _value(m, envs), obj)
    if isinstance(obj, dict):
        return {interpolate(k, envs): interpolate(v, envs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [interpolate(v, envs) for v in obj]
    return obj


def _value(m: re.Match[str], envs: dict[str, str | None]) -> str:
    value = envs.get(m.group(1))
    return m.group(0) if value is None else value
