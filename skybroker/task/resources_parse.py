"""The `resources` section -> a list of concrete `Resources` alternatives.

SkyPilot lets one section describe many alternatives: accelerator sets (`{A100: 8, H100: 8}`,
unordered) and lists (ordered), `any_of` (unordered; legacy name `candidates`), `ordered`,
and a YAML list of resources (ordered). Each `any_of`/`ordered` item overrides the fields
around it. We expand all of that here, once, so the optimizer sees only concrete
requirements plus one flag: whether the alternatives are a preference order.
"""

from __future__ import annotations

from typing import Any

from skybroker.task import fields as F
from skybroker.task.accelerators import LIST, SET, parse_accelerators
from skybroker.task.location import Loc
from skybroker.task.resources import Resources
from skybroker.task.schema import (
    RESOURCES_ALIASES,
    RESOURCES_KEYS,
    RESOURCES_LEGACY,
    RESOURCES_UNSUPPORTED,
    SUPPORTED_CLOUDS,
    TASK_KEYS,
    normalize_cloud,
    unknown_key_message,
)

Entries = dict[str, tuple[Any, Loc]]
_LOCATION = ("cloud", "region", "zone")


def parse_resources(value: Any, loc: Loc, warnings: list[str]) -> tuple[list[Resources], bool]:
    """-> (alternatives, ordered). `ordered` is False when there is only one."""
    if value is None:
        return [Resources()], False
    if isinstance(value, list):
        out = _parse_list(value, loc, warnings)
        ordered = True
    elif isinstance(value, dict):
        out, ordered = _parse_mapping(value, loc, warnings)
    else:
        hint = ""
        if isinstance(value, str):
            hint = f"; to ask for an accelerator write resources: {{accelerators: {value}}}"
        raise loc.error(f"expected a mapping (or a list of mappings), got {value!r}{hint}")
    unique: list[Resources] = []
    for r in out:
        if r not in unique:
            unique.append(r)
    return unique, ordered and len(unique) > 1


def _parse_list(value: list, loc: Loc, warnings: list[str]) -> list[Resources]:
    """`resources: [ {...}, {...} ]` is an ordered preference, as `ordered:` is."""
    if not value:
        raise loc.error("empty list of resources; remove the key to use the defaults")
    out: list[Resources] = []
    for i, item in enumerate(value):
        iloc = loc.item(i, value)
        out.extend(
            _alternative(_entries(_mapping(item, iloc), iloc, warnings, True), LIST, warnings)
        )
    return out


def _parse_mapping(value: dict, loc: Loc, warnings: list[str]) -> tuple[list[Resources], bool]:
    base = _entries(value, loc, warnings, nested=False)
    any_of, ordered = base.pop("any_of", None), base.pop("ordered", None)
    if any_of is not None and ordered is not None:
        raise ordered[1].error("'any_of' and 'ordered' cannot be used together")
    if any_of is None and ordered is None:
        alternatives, kind = _build(base, warnings)
        return alternatives, kind == LIST
    items, iloc_base = any_of or ordered  # type: ignore[misc]
    kind = SET if any_of is not None else LIST
    if not isinstance(items, list) or not items:
        raise iloc_base.error(f"expected a non-empty list of resource mappings, got {items!r}")
    out: list[Resources] = []
    for i, item in enumerate(items):
        iloc = iloc_base.item(i, items)
        entries = _entries(_mapping(item, iloc), iloc, warnings, nested=True)
        out.extend(_alternative(_merge(base, entries), kind, warnings))
    return out, kind == LIST


def _alternative(entries: Entries, container_kind: str, warnings: list[str]) -> list[Resources]:
    """Expand one item of an any_of (SET) / ordered (LIST) container."""
    alternatives, kind = _build(entries, warnings)
    if len(alternatives) > 1 and kind != container_kind:
        acc_loc = entries["accelerators"][1]
        if container_kind == SET:
            raise acc_loc.error("an ordered list of accelerators cannot be used inside any_of")
        raise acc_loc.error(
            "a set of accelerators (a mapping) cannot be used inside an ordered list; "
            "write them as a list"
        )
    return alternatives


def _mapping(item: Any, loc: Loc) -> dict:
    if not isinstance(item, dict):
        raise loc.error(f"expected a mapping of resource fields, got {item!r}")
    return item


def _entries(mapping: dict, loc: Loc, warnings: list[str], nested: bool) -> Entries:
    """Check the keys of one mapping; rename legacy keys; expand `infra`."""
    entries: Entries = {}
    for key, value in mapping.items():
        kloc = loc.key(key, mapping)
        if not isinstance(key, str):
            raise kloc.error(f"keys must be strings, got {key!r}")
        if key in RESOURCES_ALIASES:
            new = RESOURCES_ALIASES[key]
            if new in mapping:
                raise kloc.error(f"{key!r} is another name for {new!r}; give only one of them")
            key = new
        elif key in RESOURCES_LEGACY:
            new = RESOURCES_LEGACY[key]
            if new in mapping:
                raise kloc.error(f"{key!r} is the old name of {new!r}; give only one of them")
            warnings.append(kloc.message(f"{key!r} is deprecated; use {new!r}"))
            key = new  # errors keep naming the key the user wrote
        if key in RESOURCES_UNSUPPORTED:
            warnings.append(kloc.message(RESOURCES_UNSUPPORTED[key]))
            continue
        if key in TASK_KEYS:
            raise kloc.error(f"{key!r} is a task field, not a resources field: un-indent it")
        if key not in RESOURCES_KEYS:
            raise kloc.error(unknown_key_message(key, RESOURCES_KEYS, "resources"))
        if nested and key in ("any_of", "ordered"):
            raise kloc.error(f"{key!r} cannot be nested inside any_of/ordered")
        entries[key] = (value, kloc)
    if "infra" in entries:
        value, iloc = entries.pop("infra")
        clash = [k for k in _LOCATION if k in entries]
        if clash:
            raise iloc.error(f"give either 'infra' or {clash[0]!r}, not both")
        for k, v in zip(_LOCATION, _split_infra(value, iloc), strict=True):
            if v is not None:
                entries[k] = (v, iloc)
    return entries


def _split_infra(value: Any, loc: Loc) -> list[str | None]:
    """'aws/us-east-1/us-east-1a' -> [cloud, region, zone]; '*' leaves a part unpinned."""
    if not isinstance(value, str) or not value.strip():
        raise loc.error(f"expected 'cloud[/region[/zone]]' like 'aws/us-east-1', got {value!r}")
    parts = [p.strip() for p in value.strip().split("/")]
    if parts[0].lower() in ("k8s", "kubernetes") and len(parts) > 1:
        # A Kubernetes context may itself contain '/', e.g. an EKS ARN.
        parts = [parts[0], "/".join(parts[1:])]
    if len(parts) > 3 or any(not p for p in parts):
        raise loc.error(f"expected 'cloud[/region[/zone]]' like 'aws/us-east-1', got {value!r}")
    parts += [None] * (3 - len(parts))  # type: ignore[list-item]
    return [None if p == "*" else p for p in parts]


def _merge(base: Entries, item: Entries) -> Entries:
    """An any_of/ordered item overrides the surrounding fields; a new cloud drops the
    surrounding region/zone, a new region drops the surrounding zone."""
    merged = dict(base)
    if "cloud" in item:
        merged.pop("region", None)
        merged.pop("zone", None)
    if "region" in item:
        merged.pop("zone", None)
    merged.update(item)
    return merged


def _build(entries: Entries, warnings: list[str]) -> tuple[list[Resources], str]:
    """Validate the fields of one (merged) mapping and expand its accelerators."""

    def get(key: str) -> tuple[Any, Loc]:
        return entries.get(key, (None, Loc(path=f"resources.{key}")))

    cloud, cloud_loc = get("cloud")
    if cloud is not None:
        if not isinstance(cloud, str):
            raise cloud_loc.error(f"expected a cloud name, got {cloud!r}")
        try:
            cloud, supported = normalize_cloud(cloud)
        except ValueError as e:
            raise cloud_loc.error(str(e)) from None
        if not supported:
            warnings.append(cloud_loc.message(
                f"cloud {cloud!r} is not supported by skybroker yet (supported: "
                f"{', '.join(SUPPORTED_CLOUDS)}); resources pinned to it cannot be placed"
            ))  # fmt: skip
    job_recovery = get("job_recovery")
    fields: dict[str, Any] = {
        "cloud": cloud,
        "region": F.parse_str(*get("region")),
        "zone": F.parse_str(*get("zone")),
        "instance_type": F.parse_str(*get("instance_type")),
        "cpus": F.parse_amount(*get("cpus"), "vCPUs", sizes=False),
        "memory": F.parse_amount(*get("memory"), "GiB", sizes=True),
        "use_spot": F.parse_use_spot(*get("use_spot")),
        "disk_size": F.parse_disk_size(*get("disk_size")),
        "disk_tier": F.parse_disk_tier(*get("disk_tier")),
        "image_id": F.parse_image_id(*get("image_id")),
        "ports": F.parse_ports(*get("ports")),
        "labels": F.parse_labels(*get("labels")),
        "job_recovery": F.parse_job_recovery(*job_recovery, warnings),
    }
    _check_image(fields, get("image_id")[1])
    accelerators, kind = parse_accelerators(*get("accelerators"))
    if not accelerators:
        return [Resources._normalized(**fields)], kind
    return [Resources._normalized(accelerators={n: c}, **fields) for n, c in accelerators], kind


def _check_image(fields: dict[str, Any], loc: Loc) -> None:
    """A VM image is cloud- (and region-) specific; a docker image is not."""
    image = fields["image_id"]
    if image is None or (isinstance(image, str) and image.startswith("docker:")):
        return
    if fields["cloud"] is None:
        raise loc.error(
            f"image {image!r} belongs to one cloud: pin 'cloud' (or 'infra') next to it, "
            "or use a 'docker:<image>' image"
        )
    region = fields["region"]
    if isinstance(image, dict) and region is not None and region not in image:
        raise loc.error(f"no image given for the pinned region {region!r}")
