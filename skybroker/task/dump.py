"""YAML output that reads like a hand-written task file (scripts as `|` blocks)."""

from __future__ import annotations

from typing import Any

import yaml

_Base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_Base):  # type: ignore[misc, valid-type]
    pass


def _str(dumper: Any, data: str) -> Any:
    style = "|" if "\n" in data and not any(c in data for c in "\t\r") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(config: Any) -> str:
    return yaml.dump(config, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True)  # fmt: skip
