"""`file_mounts` values: a local path / URI, or a SkyPilot storage mapping.

Storage mappings (`{name, source, store, mode, ...}`) are kept verbatim for the layer that
mounts them, but their keys and `mode` are checked here so that `mdoe: MOUNT` fails with a
suggestion at parse time instead of being ignored at launch.
"""

from __future__ import annotations

from typing import Any

from skybroker.task.location import Loc
from skybroker.task.schema import unknown_key_message
from skybroker.utils.registry import did_you_mean

STORAGE_KEYS = (
    "name", "source", "store", "persistent", "mode", "mount_options", "type", "config",
    "_is_sky_managed", "_bucket_sub_path", "_force_delete",
)  # fmt: skip
STORAGE_MODES = ("MOUNT", "COPY", "MOUNT_CACHED")


def check_storage(spec: dict[str, Any], loc: Loc) -> None:
    """Raise on unknown keys, a bad mode, or a mapping with neither name nor source."""
    for key in spec:
        if key not in STORAGE_KEYS:
            raise loc.key(key, spec).error(unknown_key_message(key, STORAGE_KEYS, "storage"))
    mode = spec.get("mode")
    if mode is not None and (not isinstance(mode, str) or mode.upper() not in STORAGE_MODES):
        raise loc.key("mode", spec).error(
            f"unknown storage mode {mode!r}.{did_you_mean(str(mode), STORAGE_MODES)}"
            f" Choose one of: {', '.join(STORAGE_MODES)}"
        )
    if spec.get("name") is None and spec.get("source") is None:
        raise loc.error("a storage mapping needs a 'name' (a bucket) or a 'source'")
    for key in ("name", "store", "mount_options", "type"):
        value = spec.get(key)
        if value is not None and not isinstance(value, str):
            raise loc.key(key, spec).error(f"expected a string, got {value!r}")
    source = spec.get("source")
    if source is not None and not (
        isinstance(source, str)
        or (
            isinstance(source, list) and source and all(isinstance(s, str) for s in source)
        )  # fmt: skip
    ):
        raise loc.key("source", spec).error(
            f"expected a path/URI or a list of them, got {source!r}"
        )
    if "persistent" in spec and not isinstance(spec["persistent"], bool):
        raise loc.key("persistent", spec).error(
            f"must be true or false, got {spec['persistent']!r}"
        )
