"""The task YAML vocabulary: which keys exist, which we support, which only warn.

Kept as plain data so the docs, the validators and the "did you mean" suggestions agree.
A key SkyPilot knows but skybroker does not implement yet is accepted with a warning (never
silently dropped); a key nobody knows is an error suggesting the closest known key.
"""

from __future__ import annotations

from skybroker.utils.registry import did_you_mean, suggest

TASK_KEYS = (
    "name", "workdir", "num_nodes", "resources", "envs", "secrets", "file_mounts",
    "setup", "run", "inputs", "outputs",
)  # fmt: skip
# SkyPilot task keys we keep (raw, round-tripped) but do not act on yet.
TASK_UNSUPPORTED = {
    "service": "SkyServe services are not supported yet; the section is ignored",
    "config": "per-task config overrides are not supported yet; the section is ignored",
    "experimental": "experimental options are not supported yet; the section is ignored",
    "event_callback": "event callbacks are not supported yet; the command will not run",
    "volumes": "volumes are not supported yet; use file_mounts",
    "pool": "worker pools are not supported yet; the section is ignored",
    "volume_mounts": "volume mounts are not supported yet; use file_mounts",
    "managed_secrets": "managed secrets are not supported yet; use secrets with --secret",
    "file_mounts_mapping": "file_mounts_mapping (internal to SkyPilot) is ignored",
    "api_server_access": "API server access from tasks is not supported; ignored",
    "_metadata": "_metadata (internal to SkyPilot) is ignored",
}

RESOURCES_KEYS = (
    "cloud", "region", "zone", "infra", "instance_type", "accelerators", "cpus", "memory",
    "use_spot", "disk_size", "disk_tier", "image_id", "ports", "labels", "job_recovery",
    "any_of", "ordered",
)  # fmt: skip
# Other names SkyPilot accepts for a key, without deprecation.
RESOURCES_ALIASES = {"gpus": "accelerators"}
RESOURCES_LEGACY = {
    "candidates": "any_of",
    "spot_recovery": "job_recovery",
    "ephemeral_storage": "disk_size",
}
RESOURCES_UNSUPPORTED = {
    "accelerator_args": "accelerator_args (TPU runtime options) are not supported yet; ignored",
    "autostop": "autostop is not supported yet in task YAML; ignored",
    "network_tier": "network_tier is not supported yet; the default network is used",
    "priority": "job priority is not supported yet; ignored",
    "volumes": "volumes are not supported yet; use file_mounts",
    "_docker_login_config": "private docker registry login is not supported yet; ignored",
    "_cluster_config_overrides": "cluster config overrides are not supported yet; ignored",
    "_requires_fuse": "FUSE requirements are not checked yet; ignored",
    "_is_image_managed": "managed images are not supported yet; ignored",
    "_no_missing_accel_warnings": "_no_missing_accel_warnings (internal) is ignored",
    "local_disk": "local_disk is not supported yet; ignored",
    "max_hourly_cost": "max_hourly_cost is not supported yet; compare prices in the plan",
    "priority_class": "priority_class is not supported yet; ignored",
    "hooks": "lifecycle hooks are not supported yet; ignored",
}

JOB_RECOVERY_KEYS = (
    "strategy", "max_restarts_on_errors", "deadline", "duration", "restart_overhead",
)  # fmt: skip
JOB_RECOVERY_UNSUPPORTED = {
    "recover_on_exit_codes": "recover_on_exit_codes is not supported yet; ignored",
}

DISK_TIERS = ("low", "medium", "high", "ultra", "best")

# Clouds skybroker can launch on.
SUPPORTED_CLOUDS = ("aws", "gcp", "azure", "local", "ssh")
# Clouds SkyPilot knows; accepted (the pin is kept, so nothing lands elsewhere by surprise)
# with a warning that skybroker has no catalog or provisioner for them.
OTHER_SKYPILOT_CLOUDS = (
    "kubernetes", "lambda", "runpod", "oci", "ibm", "scp", "fluidstack", "paperspace",
    "cudo", "do", "vast", "nebius", "vsphere", "hyperbolic", "seeweb", "primeintellect",
    "shadeform",
)  # fmt: skip
CLOUD_ALIASES = {"k8s": "kubernetes", "lambdalabs": "lambda", "digitalocean": "do", "gce": "gcp",
                 "ec2": "aws", "az": "azure"}  # fmt: skip

# Words people write for a key; checked before the spelling-based suggestion.
_MEANT = {
    "gpu": "accelerators", "accelerator": "accelerators",
    "spot": "use_spot", "instance": "instance_type", "disk": "disk_size", "image": "image_id",
    "env": "envs", "environment": "envs", "nodes": "num_nodes", "recovery": "job_recovery",
    "provider": "cloud", "cpu": "cpus", "mem": "memory", "command": "run", "commands": "run",
    "port": "ports", "candidates": "any_of", "branch": "ref", "commit": "ref", "tag": "ref",
    "repo": "url", "git": "url",
}  # fmt: skip


def unknown_key_message(key: object, known: tuple[str, ...] | list[str], what: str) -> str:
    """`unknown key 'x' in <what>. Did you mean 'y'?` plus the list of valid keys."""
    name = str(key)
    meant = _MEANT.get(name.lower())
    hint = f" Did you mean {meant!r}?" if meant in known else did_you_mean(name, known)
    if not hint:
        # "accelerator_type" -> "accelerators": prefix matches catch what difflib misses.
        hits = [k for k in known if name.lower().startswith(k[:5]) or k.startswith(name.lower())]
        hint = f" Did you mean {hits[0]!r}?" if hits else ""
    if hint:
        return f"unknown key {name!r} in {what}.{hint}"
    return f"unknown key {name!r} in {what}. Valid keys: {', '.join(sorted(known))}"


def normalize_cloud(name: str) -> tuple[str, bool]:
    """(canonical lowercase cloud, supported?) or ValueError with a suggestion."""
    key = name.strip().lower()
    key = CLOUD_ALIASES.get(key, key)
    if key in SUPPORTED_CLOUDS:
        return key, True
    if key in OTHER_SKYPILOT_CLOUDS:
        return key, False
    known = SUPPORTED_CLOUDS + OTHER_SKYPILOT_CLOUDS
    hits = suggest(key, known)
    hint = f" Did you mean {hits[0]!r}?" if hits else ""
    raise ValueError(f"unknown cloud {name!r}.{hint} Supported: {', '.join(SUPPORTED_CLOUDS)}")
