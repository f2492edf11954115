"""`Task`: a parsed, validated, interpolated SkyPilot-compatible task.

Parsing happens once, here: consumers get plain normalized values (envs resolved, resources
expanded into concrete alternatives) and never look at raw YAML again. Unsupported SkyPilot
sections are kept verbatim (so the YAML round-trips) and reported in `warnings`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from skybroker.errors import TaskValidationError
from skybroker.task import envs as E
from skybroker.task.location import Loc
from skybroker.task.resources import Resources
from skybroker.task.resources_parse import parse_resources
from skybroker.task.schema import RESOURCES_KEYS, TASK_KEYS, TASK_UNSUPPORTED, unknown_key_message
from skybroker.task.storage import check_storage
from skybroker.task.yaml_loader import load_documents, scalar_text


@dataclass
class Task:
    name: str | None = None
    workdir: str | dict[str, str] | None = None
    num_nodes: int = 1
    envs: dict[str, str | None] = field(default_factory=dict)
    secrets: dict[str, str | None] = field(default_factory=dict)
    file_mounts: dict[str, Any] = field(default_factory=dict)
    setup: str | None = None
    run: str | None = None
    resources: list[Resources] = field(default_factory=lambda: [Resources()])
    resources_ordered: bool = False
    inputs: dict[str, float] | None = None
    outputs: dict[str, float] | None = None
    # SkyPilot sections we accept but do not act on (service, config, ...), kept verbatim.
    unsupported: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list, compare=False)
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.resources, Resources):
            self.resources = [self.resources]
        if not self.resources:
            self.resources = [Resources()]
        if isinstance(self.num_nodes, bool) or not isinstance(self.num_nodes, int):
            raise TaskValidationError(
                f"num_nodes: must be a whole number >= 1, got {self.num_nodes!r}"
            )
        if self.num_nodes < 1:
            raise TaskValidationError(
                f"num_nodes: must be a whole number >= 1, got {self.num_nodes}"
            )

    # ---- construction --------------------------------------------------------------------

    @classmethod
    def from_yaml(
        cls,
        path: str | os.PathLike[str],
        env_overrides: dict[str, Any] | None = None,
        secret_overrides: dict[str, Any] | None = None,
    ) -> Task:
        """One task file. A multi-document file (a pipeline) must go through load_tasks."""
        source = os.fspath(path)
        docs = [d for d in load_documents(read_text(source), source) if d is not None]
        if len(docs) > 1:
            raise TaskValidationError(
                f"{source}: holds {len(docs)} YAML documents (a pipeline); "
                "load it with skybroker.task.load_tasks() instead of Task.from_yaml()"
            )
        return cls.from_yaml_config(docs[0] if docs else None, env_overrides,
                                    secret_overrides, source=source)  # fmt: skip

    @classmethod
    def from_yaml_str(
        cls,
        text: str,
        env_overrides: dict[str, Any] | None = None,
        secret_overrides: dict[str, Any] | None = None,
        source: str = "<string>",
    ) -> Task:
        docs = [d for d in load_documents(text, source) if d is not None]
        if len(docs) > 1:
            raise TaskValidationError(f"{source}: holds {len(docs)} YAML documents; "
                                      "use load_tasks_str()")  # fmt: skip
        return cls.from_yaml_config(docs[0] if docs else None, env_overrides,
                                    secret_overrides, source=source)  # fmt: skip

    @classmethod
    def from_yaml_config(
        cls,
        config: dict[str, Any] | None,
        env_overrides: dict[str, Any] | None = None,
        secret_overrides: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> Task:
        """A task mapping (as loaded from YAML) -> Task; `--env` overrides win."""
        loc = Loc(source, "", getattr(config, "line", None))
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise loc.error(
                "a task must be a mapping of fields (name, resources, run, ...), "
                f"got {'a list' if isinstance(config, list) else repr(config)}"
            )
        warnings: list[str] = []
        unsupported: dict[str, Any] = {}
        for key in config:
            kloc = loc.key(key, config)
            if key == "secrets" and isinstance(config[key], list):
                # SkyPilot's list form names managed secrets we cannot resolve.
                warnings.append(kloc.message("managed secret references are not supported "
                                             "yet; give secrets as NAME: value"))  # fmt: skip
                unsupported[key] = plain(config[key], kloc)
            elif key in TASK_UNSUPPORTED:
                warnings.append(kloc.message(TASK_UNSUPPORTED[key]))
                unsupported[key] = plain(config[key], kloc)
            elif key in RESOURCES_KEYS and key not in TASK_KEYS:
                raise kloc.error(f"{key!r} is a resources field: indent it under 'resources:'")
            elif key not in TASK_KEYS:
                raise kloc.error(unknown_key_message(key, TASK_KEYS, "the task"))

        def sub(key: str) -> Loc:
            return loc.key(key, config)

        envs = _env_map(config.get("envs"), sub("envs"), env_overrides, "envs")
        try:
            envs = E.resolve_envs(envs)
        except E.EnvCycleError as e:
            raise (
                sub("envs")
                .key(e.chain[0], config.get("envs"))
                .error(f"envs reference each other in a cycle: {' -> '.join(e.chain)}")
            ) from None
        alternatives, ordered = parse_resources(config.get("resources"), sub("resources"),
                                                warnings)  # fmt: skip
        task = cls(
            name=_name(config.get("name"), sub("name")),
            workdir=E.interpolate(_workdir(config.get("workdir"), sub("workdir")), envs),
            num_nodes=_num_nodes(config.get("num_nodes"), sub("num_nodes")),
            envs=envs,
            secrets=_env_map(
                None if "secrets" in unsupported else config.get("secrets"),
                sub("secrets"),
                secret_overrides,
                "secrets",
            ),  # fmt: skip
            file_mounts=E.interpolate(
                _file_mounts(config.get("file_mounts"), sub("file_mounts")), envs
            ),  # fmt: skip
            setup=_script(config.get("setup"), sub("setup")),
            run=_script(config.get("run"), sub("run")),
            resources=alternatives,
            resources_ordered=ordered,
            inputs=_sizes(config.get("inputs"), sub("inputs")),
            outputs=_sizes(config.get("outputs"), sub("outputs")),
            unsupported=unsupported,
            warnings=sorted(dict.fromkeys(warnings), key=_line_key(source)),
            source=source,
        )
        return task

    # ---- queries -------------------------------------------------------------------------

    def missing_envs(self) -> list[str]:
        """Envs declared without a value (to be given with --env); launching needs them."""
        return [k for k, v in self.envs.items() if v is None]

    def missing_secrets(self) -> list[str]:
        return [k for k, v in self.secrets.items() if v is None]

    def check_launchable(self) -> None:
        """Raise a clear error when an env or secret still has no value."""
        for kind, names in (("env", self.missing_envs()), ("secret", self.missing_secrets())):
            if names:
                where = f"{self.source}: " if self.source else ""
                flags = " ".join(f"--{kind} {n}=..." for n in names)
                raise TaskValidationError(
                    f"{where}{kind}s without a value: {', '.join(names)}. Set them in the YAML "
                    f'or on the command line: {flags} (use {names[0]}="" for an empty value)'
                )

    def expand(self, text: str) -> str:
        """`text` with this task's `${VAR}` envs substituted (for display, dry runs).

        run/setup are stored verbatim: the runtime exports envs and the shell expands them,
        which keeps scripts that reassign a variable correct (as in SkyPilot).
        """
        return E.interpolate(text, self.envs)

    @property
    def best_resources(self) -> Resources:
        """The first alternative (the preferred one when resources_ordered)."""
        return self.resources[0]

    # ---- serialization -------------------------------------------------------------------

    def to_yaml_config(self, redact_secrets: bool = False) -> dict[str, Any]:
        """The canonical mapping; Task.from_yaml_config of it gives an equal Task."""
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.workdir is not None:
            out["workdir"] = plain(self.workdir)
        if self.num_nodes != 1:
            out["num_nodes"] = self.num_nodes
        res = [r.to_yaml_config() for r in self.resources]
        if len(res) == 1:
            if res[0]:
                out["resources"] = res[0]
        elif res:
            out["resources"] = _factor(res, "ordered" if self.resources_ordered else "any_of")
        for key in ("inputs", "outputs"):
            if getattr(self, key) is not None:
                out[key] = dict(getattr(self, key))
        if self.envs:
            out["envs"] = dict(self.envs)
        if self.secrets:
            out["secrets"] = {k: ("<redacted>" if redact_secrets and v is not None else v)
                              for k, v in self.secrets.items()}  # fmt: skip
        if self.file_mounts:
            out["file_mounts"] = plain(self.file_mounts)
        for key in ("setup", "run"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(plain(self.unsupported))
        return out

    def to_yaml(self, redact_secrets: bool = False) -> str:
        from skybroker.task.dump import dump_yaml

        return dump_yaml(self.to_yaml_config(redact_secrets))


def _factor(alternatives: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """Fields shared by every alternative move out of the any_of/ordered list (readable
    output). Location keys stay per item: an item's cloud drops the surrounding region."""
    first = alternatives[0]
    common = {
        k: v
        for k, v in first.items()
        if k not in ("cloud", "region", "zone") and all(a.get(k, ...) == v for a in alternatives)
    }
    items = [{k: v for k, v in a.items() if k not in common} for a in alternatives]
    return {**common, kind: items}


# ---- field validators ------------------------------------------------------------------


def _line_key(source: str | None):
    """Sort warnings in file order (they are collected field by field)."""
    pattern = re.compile(re.escape(source or "<config>") + r":(\d+): ")

    def key(message: str) -> int:
        m = pattern.match(message)
        return int(m.group(1)) if m else 0

    return key


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise TaskValidationError(f"{path}: no such task file") from None
    except IsADirectoryError:
        raise TaskValidationError(f"{path}: is a directory, not a task YAML file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TaskValidationError(f"{path}: cannot read: {e}") from None


def plain(obj: Any, loc: Loc | None = None, depth: int = 0) -> Any:
    """LineDict/LineList -> dict/list, recursively (safe to dump and to compare)."""
    if depth > 64:  # only a recursive YAML alias (`&a [*a]`) nests this deep
        raise (loc or Loc()).error("nests more than 64 levels deep (a recursive YAML alias?)")
    if isinstance(obj, dict):
        return {k: plain(v, loc, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v, loc, depth + 1) for v in obj]
    return obj


def _env_map(value: Any, loc: Loc, overrides: dict[str, Any] | None, what: str) -> dict:
    out: dict[str, str | None] = {}
    if value is not None:
        if not isinstance(value, dict):
            raise loc.error(f"expected a mapping of NAME: value, got {value!r}")
        for k, v in value.items():
            kloc = loc.key(k, value)
            name = str(k) if isinstance(k, int) and not isinstance(k, bool) else k
            if not isinstance(name, str) or not E.NAME.match(name):
                raise kloc.error(f"invalid {what[:-1]} name {k!r}: use letters, digits and _")
            if isinstance(v, (dict, list)):
                kind = "a mapping" if isinstance(v, dict) else "a list"
                raise kloc.error(f"value must be a string, got {kind}: {plain(v, kloc)!r}")
            out[name] = None if v is None else scalar_text(value, k, v)
    for k, v in (overrides or {}).items():
        if not isinstance(k, str) or not E.NAME.match(k):
            raise TaskValidationError(f"--{what[:-1]} {k!r}: invalid name")
        out[k] = None if v is None else str(v)
    return out


def _name(value: Any, loc: Loc) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise loc.error(f"expected a string, got {value!r}")
    name = str(value).strip()
    if not name:
        raise loc.error("must not be empty")
    return name


def _workdir(value: Any, loc: Loc) -> str | dict[str, str] | None:
    """A local directory, or a git checkout `{url, ref}`."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            raise loc.error("must not be empty")
        return value
    if not isinstance(value, dict):
        raise loc.error(f"expected a directory or a {{url, ref}} git mapping, got {value!r}")
    for key in value:
        if key not in ("url", "ref"):
            raise loc.key(key, value).error(unknown_key_message(key, ("url", "ref"), "workdir"))
    url, ref = value.get("url"), value.get("ref")
    if not isinstance(url, str) or not url.strip():
        raise loc.key("url", value).error(f"a git workdir needs a 'url', got {url!r}")
    out = {"url": url.strip()}
    if ref is not None:
        if isinstance(ref, bool) or not isinstance(ref, (str, int)):
            raise loc.key("ref", value).error(f"expected a branch, tag or commit, got {ref!r}")
        out["ref"] = scalar_text(value, "ref", ref).strip()
    return out


def _num_nodes(value: Any, loc: Loc) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise loc.error(f"must be a whole number >= 1, got {value!r}")
    return value


def _file_mounts(value: Any, loc: Loc) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise loc.error(f"expected a mapping of remote path -> source, got {value!r}")
    out: dict[str, Any] = {}
    for dst, src in value.items():
        kloc = loc.key(dst, value)
        if not isinstance(dst, str) or not dst.strip():
            raise kloc.error(f"the remote path must be a string, got {dst!r}")
        if isinstance(src, str) and src.strip():
            out[dst] = src
        elif isinstance(src, dict) and src:
            check_storage(src, kloc)
            out[dst] = plain(src, kloc)
        else:
            raise kloc.error(f"expected a local path, a URI or a storage mapping, got {src!r}")
    return out


def _script(value: Any, loc: Loc) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        raise loc.error("expected a script string, got a list; write it as a `|` block")
    if not isinstance(value, str):
        raise loc.error(f"expected a script string, got {value!r}")
    return value


def _sizes(value: Any, loc: Loc) -> dict[str, float] | None:
    """SkyPilot inputs/outputs: {path_or_uri: estimated size in GB}."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise loc.error(f"expected a mapping like {{s3://bucket/data: 100}} (GB), got {value!r}")
    out: dict[str, float] = {}
    for path, size in value.items():
        kloc = loc.key(path, value)
        if not isinstance(path, str) or not path.strip():
            raise kloc.error(f"expected a path or URI, got {path!r}")
        if isinstance(size, bool) or not isinstance(size, (int, float)) or size < 0:
            raise kloc.error(f"size must be a number of GB >= 0, got {size!r}")
        out[path] = float(size)
    return out
