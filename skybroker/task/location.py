"""Where a value came from: file, line and field path, for errors and warnings.

Every validator takes a `Loc` and raises `loc.error(...)`, so messages read
`task.yaml:7: resources.accelerators: count must be a positive number, got 'x'` whether
the value came from a file (lines known) or from a Python dict (lines omitted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skybroker.errors import TaskValidationError
from skybroker.task.yaml_loader import line_of

_MAX_MESSAGE = 300


def describe(value: Any) -> str:
    """'a mapping' / 'a list' / 'a boolean' / 'int' for error messages."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    return type(value).__name__


@dataclass(frozen=True)
class Loc:
    source: str | None = None
    path: str = ""
    line: int | None = None

    def key(self, name: Any, container: Any = None) -> Loc:
        """The location of `container[name]` (a mapping field)."""
        path = f"{self.path}.{name}" if self.path else str(name)
        return Loc(self.source, path, line_of(container, name) or self.line)

    def item(self, index: int, container: Any = None) -> Loc:
        """The location of `container[index]` (a list item)."""
        return Loc(self.source, f"{self.path}[{index}]", line_of(container, index) or self.line)

    def at(self, container: Any, key: Any) -> Loc:
        """Same field path, but the (more precise) line of `container[key]`."""
        return Loc(self.source, self.path, line_of(container, key) or self.line)

    def prefix(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where = f"{where or '<config>'}:{self.line}"
        parts = [p for p in (where, self.path) if p]
        return ": ".join(parts)

    def message(self, msg: str) -> str:
        if len(msg) > _MAX_MESSAGE:  # a whole mapping quoted back is noise, not help
            msg = msg[: _MAX_MESSAGE - 5] + " ...}"
        prefix = self.prefix()
        return f"{prefix}: {msg}" if prefix else msg

    def error(self, msg: str, hint: str | None = None) -> TaskValidationError:
        err = TaskValidationError(self.message(msg), hint)
        err.source, err.line, err.field = self.source, self.line, self.path  # type: ignore[attr-defined]
        return err
