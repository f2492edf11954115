"""A PyYAML SafeLoader that remembers where every key and item came from.

Why: validation errors must say `task.yaml:7: resources.accelerators: ...`, and duplicate keys
(which plain PyYAML silently collapses, keeping the last) must be rejected with both lines.
Mappings load as `LineDict` and sequences as `LineList`: ordinary dict/list subclasses that
carry 1-based line numbers, so the rest of the task layer can treat them as plain data.
The C parser is used when PyYAML was built with libyaml; construction stays in Python.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from skybroker.errors import TaskValidationError

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class LineDict(dict):
    """A dict that knows the line of itself, of each key and of each value."""

    line: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}
        self.value_lines: dict[Any, int] = {}
        # The source text of plain scalars (`1.10`, `yes`, `0123`), so envs keep what was
        # written instead of YAML 1.1's float/bool/octal reading of it.
        self.raw_text: dict[Any, str] = {}


class LineList(list):
    """A list that knows the line of itself and of each item."""

    line: int | None = None

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines: list[int] = []


def _hashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


class LineLoader(_Base):  # type: ignore[misc, valid-type]
    """SafeLoader producing LineDict/LineList and rejecting duplicate keys."""

    source: str = "<string>"

    def construct_line_map(self, node: MappingNode):
        data = LineDict()
        data.line = node.start_mark.line + 1
        yield data
        own = {id(k) for k, _ in node.value if k.tag != _MERGE_TAG}
        self.flatten_mapping(node)  # resolves `<<: *anchor` merges into node.value
        owner: dict[Any, bool] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=False)
            line = key_node.start_mark.line + 1
            if not _hashable(key):
                raise TaskValidationError(
                    f"{self.source}:{line}: a mapping key must be a plain value, got {key!r}"
                )
            is_own = id(key_node) in own
            if key in data and is_own and owner.get(key):
                raise TaskValidationError(
                    f"{self.source}:{line}: duplicate key {key!r} (first defined on line "
                    f"{data.key_lines[key]}); YAML would silently keep only the last one"
                )
            owner[key] = is_own
            data[key] = self.construct_object(value_node, deep=False)
            data.key_lines[key] = line
            data.value_lines[key] = value_node.start_mark.line + 1
            if isinstance(value_node, ScalarNode) and not value_node.style:
                data.raw_text[key] = value_node.value

    def construct_line_seq(self, node: SequenceNode):
        data = LineList()
        data.line = node.start_mark.line + 1
        yield data
        for child in node.value:
            data.append(self.construct_object(child, deep=False))
            data.item_lines.append(child.start_mark.line + 1)


LineLoader.add_constructor("tag:yaml.org,2002:map", LineLoader.construct_line_map)
LineLoader.add_constructor("tag:yaml.org,2002:seq", LineLoader.construct_line_seq)


def load_documents(text: str, source: str = "<string>") -> list[Any]:
    """All YAML documents of `text` (None for empty ones), with line info attached.

    Raises TaskValidationError naming `source` and the line for syntax errors and
    duplicate keys.
    """
    loader = LineLoader(text)
    loader.source = source
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
        return docs
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        context = e.context or ""
        if context and e.context_mark is not None and mark and e.context_mark.line != mark.line:
            context += f" (started on line {e.context_mark.line + 1})"
        what = ": ".join(str(p) for p in (context, e.problem) if p)
        line = text.splitlines()[mark.line] if mark is not None and mark.line < len(
            text.splitlines()) else ""  # fmt: skip
        raise TaskValidationError(
            f"{where}: invalid YAML: {what}{_yaml_hint(what, line)}"
        ) from None
    except yaml.YAMLError as e:
        raise TaskValidationError(f"{source}: invalid YAML: {e}") from None
    finally:
        loader.dispose()


def _yaml_hint(problem: str, line: str) -> str:
    """The usual cause of PyYAML's terser messages, as real task files hit them."""
    if "\t" in line[: len(line) - len(line.lstrip())]:
        return " (indent YAML with spaces, not tabs)"
    if "mapping values are not allowed" in problem:
        return (" (a value containing ': ' must be quoted, e.g. accelerators: 'A100:8'"
                " — or is the indentation off?)")  # fmt: skip
    return ""


def scalar_text(mapping: Any, key: Any, value: Any) -> str:
    """`mapping[key]` as the text that was written: `1.10` stays '1.10', `yes` stays 'yes'
    (YAML 1.1 would read them as 1.1 and True). Plain dicts fall back to str()."""
    if isinstance(value, str):
        return value
    if isinstance(mapping, LineDict) and key in mapping.raw_text:
        return mapping.raw_text[key]
    return str(value)


def line_of(container: Any, key: Any) -> int | None:
    """The line of `container[key]` when the container came from the loader."""
    if isinstance(container, LineDict):
        return container.key_lines.get(key)
    if isinstance(container, LineList) and isinstance(key, int) and 0 <= key < len(container):
        return container.item_lines[key]
    return None
