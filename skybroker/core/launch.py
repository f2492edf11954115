"""`sky launch`: plan, provision (with failover), prepare the nodes, submit the job, stream it.

The cluster row is written INIT before any cloud call (with the launching pid), so a CLI that
dies mid-launch is reconciled by `sky status --refresh`. An UP cluster of the same name is
reused: no provisioning, and setup re-runs only when it changed (the head's agent compares
the setup hash).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skybroker.errors import SkyError
from skybroker.state import clusters as cstate
from skybroker.state import events


@dataclass
class LaunchResult:
    cluster_name: str
    job_id: int | None
    returncode: int
    status: str | None = None  # the job's final status (None when detached)
    placement: Any = None
    reused: bool = False
    message: str = ""


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _out(line: str) -> None:
    print(line, flush=True)


def _ask(question: str) -> bool:
    try:
        answer = input(f"{question} [Y/n] ").strip().lower()
    except EOFError:
        return False
    return answer in ("", "y", "yes")


def default_cluster_name() -> str:
    user = (os.environ.get("USER") or "user").replace("_", "-")[:8].lower()
    return f"sky-{uuid.uuid4().hex[:4]}-{user}"


def validate_local_inputs(task: Any) -> None:
    """Fail before provisioning on inputs that can never work (one clear line each)."""
    wd = getattr(task, "workdir", None)
    if wd and not Path(wd).expanduser().is_dir():
        raise SkyError(f"workdir {wd!r} does not exist or is not a directory.")
    for dst, src in (getattr(task, "file_mounts", None) or {}).items():
        if isinstance(src, str) and "://" not in src and not Path(src).expanduser().exists():
            raise SkyError(f"file_mounts source {src!r} (for {dst}) does not exist.")


def _gpus_per_node(task: Any, placement: Any) -> int:
    acc = getattr(placement.offer, "accelerator_count", None)
    try:
        return int(acc or 0)
    except (TypeError, ValueError):
        return 0


def local_price_as(instance_type: str, spot: bool) -> float | None:
    """Hourly price of a `local` shape priced like a real instance (config `local.price_as`).

        local:
          price_as:                       # so cost reports mean something
            local.medium: aws/m6i.xlarge  # cloud/instance_type[/region]
            default: aws/m6i.large

    The cheapest matching catalog row is used (its spot price for spot). None: no mapping.
    """
    from skybroker.config import load_config

    mapping = (load_config().get("local") or {}).get("price_as") or {}
    ref = mapping.get(instance_type) or mapping.get("default")
    if not ref:
        return None
    parts = str(ref).split("/")
    if len(parts) < 2:
        raise SkyError(f"local.price_as: {ref!r} must be cloud/instance_type[/region].")
    import numpy as np

    from skybroker.catalog import load_catalog

    t = load_catalog(parts[0])
    mask = t.instance_type == parts[1]
    if len(parts) > 2:
        mask &= t.region == parts[2]
    prices = (t.spot_price if spot else t.price)[mask]
    prices = prices[~np.isnan(prices)]
    if not len(prices):
        raise SkyError(f"local.price_as: no {'spot ' if spot else ''}price for {ref} in the catalog.")
    return float(prices.min())


def _hourly(p: Any) -> float:
    if p.offer.cloud == "local":
        unit = local_price_as(p.offer.instance_type, bool(p.spot))
        if unit is not None:
            return unit * p.num_nodes
    return float(p.hourly_cost)


def _make_spec(task: Any, cluster_name: str) -> Callable[[Any], Any]:
    from skybroker.clouds.base import ClusterSpec

    def make(p: Any) -> ClusterSpec:
        res = task.resources[getattr(p, "resources_index", 0)] if task.resources else None
        return ClusterSpec(
            cluster_name=cluster_name, cloud=p.offer.cloud, region=p.offer.region,
            zone=p.offer.zone, instance_type=p.offer.instance_type, spot=bool(p.spot),
            num_nodes=p.num_nodes,
            disk_size_gb=int(getattr(res, "disk_size", None) or 256),
            image_id=getattr(res, "image_id", None),
            ports=[str(x) for x in (getattr(res, "ports", None) or [])],
            labels=dict(getattr(res, "labels", None) or {}),
            # GCP attaches GPUs separately from the machine type: the spec must carry them.
            accelerators=({p.offer.accelerator_name: int(p.offer.accelerator_count or 1)}
                          if p.offer.accelerator_name else {}),
        )

    return make


def _wants_ssh(task: Any, clouds: list[str] | None) -> bool:
    if clouds:
        return [c.lower() for c in clouds] == ["ssh"]
    pins = {getattr(r, "cloud", None) for r in task.resources or []}
    return pins == {"ssh"}


def _prefetch(module: str) -> None:
    import importlib
    import threading

    threading.Thread(target=importlib.import_module, args=(module,), daemon=True).start()


def _plan(task: Any, clouds: list[str] | None, sort_by: str) -> Any:
    if _wants_ssh(task, clouds):
        from skybroker.clouds.ssh.pools import ssh_placements

        return ssh_placements(task)
    from skybroker.optimizer import optimize

    if clouds is None:  # a task pinned to clouds needs only their catalogs loaded
        pins = {getattr(r, "cloud", None) for r in task.resources or []}
        clouds = sorted(pins) if pins and None not in pins else None
    if clouds is None:  # a real launch uses only clouds with usable credentials (sky check)
        from skybroker.catalog import available_clouds
        from skybroker.clouds.check import enabled_clouds_for_launch

        have = set(available_clouds())
        clouds = [c for c in enabled_clouds_for_launch() if c in have]
    return optimize(task, clouds=clouds, sort_by=sort_by)


def provision(task: Any, name: str, *, clouds: list[str] | None, retry_until_up: bool,
              sort_by: str = "cost", log: Callable[[str], None] = _err,
              confirm: Callable[[str], bool] | None = None) -> tuple[Any, Any]:
    """Provision a new cluster for `task`; returns (ClusterInfo, Placement)."""
    from skybroker.core.failover import provision_with_failover

    plan = _plan(task, clouds, sort_by)
    if confirm is not None:
        first = plan[0] if isinstance(plan, list) else next(iter(plan.placements), None)
        if first is not None and not confirm(
                f"Launch a new cluster {name!r}: {first.describe()} at ${_hourly(first):.4f}/h. Proceed?"):
            raise SkyError("Launch aborted.")

    def before(p: Any, spec: Any) -> None:
        cstate.upsert(name, status=cstate.INIT, cloud=p.offer.cloud, region=p.offer.region,
                      zone=p.offer.zone, instance_type=p.offer.instance_type, spot=bool(p.spot),
                      num_nodes=p.num_nodes, hourly_price=_hourly(p),
                      metadata={"launch_pid": os.getpid(), "task": getattr(task, "name", None)})
        log(f"Launching {name}: {p.describe() if hasattr(p, 'describe') else p.offer.instance_type}"
            f" at ${_hourly(p):.4f}/h ...")

    def attempt(a: Any) -> None:
        if a.outcome != "UP":
            log(f"  {a.line()}")

    try:
        info, placement, _ = provision_with_failover(plan, _make_spec(task, name), on_attempt=attempt,
                                                     retry_until_up=retry_until_up,
                                                     before_attempt=before)
    except BaseException:
        rec = cstate.get(name)
        if rec is not None and rec.info is None:
            cstate.remove(name)  # nothing was launched: leave no phantom INIT row
        raise
    now = time.time()
    cstate.upsert(name, status=cstate.UP, info=info.to_json(), launched_at=now,
                  metadata={"task": getattr(task, "name", None),
                            "gpus_per_node": _gpus_per_node(task, placement),
                            "vcpus_per_node": getattr(placement.offer, "vcpus", None)})
    rec = cstate.get(name)
    cstate.usage_start(rec, now)
    events.add("cluster.up", f"launched on {placement.offer.cloud}/{placement.offer.region}"
               f"/{placement.offer.zone or '-'} {placement.offer.instance_type}", cluster=name)
    return info, placement


def launch(tasks: list[Any], cluster_name: str | None = None, *, detach_run: bool = False,
           retry_until_up: bool = False, clouds: list[str] | None = None, stream: bool = True,
           yes: bool = True, sort_by: str = "cost",
           on_line: Callable[[str], None] | None = None,
           log: Callable[[str], None] = _err) -> LaunchResult:
    """Run `tasks` (a chain runs as consecutive jobs) on cluster `cluster_name`."""
    from skybroker.core import lifecycle
    from skybroker.runtime import cluster as rt

    if not tasks:
        raise SkyError("Nothing to launch: the task file has no task.")
    task = tasks[0]
    for t in tasks:
        validate_local_inputs(t)
    name = cluster_name or default_cluster_name()
    rec = cstate.get(name)
    if _wants_ssh(task, clouds) or (rec is not None and rec.cloud == "ssh"):
        _prefetch("paramiko")  # ~0.3-0.5 s import, overlapped with the state/plan work
    reused = False
    if rec is not None and rec.status == cstate.INIT:
        rec = lifecycle.refresh(name)
        if rec is not None and rec.status == cstate.INIT and rec.info is None:
            raise SkyError(f"Cluster {name} is being launched by another sky process "
                           f"(pid {rec.metadata.get('launch_pid')}).", hint="Wait for it, or pick another name.")
    if rec is not None and rec.status == cstate.STOPPED:
        lifecycle.start(name, log=log)
        rec = cstate.get(name)
    if rec is not None and rec.status == cstate.UP and rec.info:
        need = max(int(getattr(t, "num_nodes", 1) or 1) for t in tasks)
        pins = {getattr(r, "cloud", None) for t in tasks for r in t.resources or []} - {None}
        if clouds:
            pins |= {c.lower() for c in clouds}
        if pins and rec.cloud not in pins:
            raise SkyError(f"Cluster {name} runs on {rec.cloud}; the task asks for "
                           f"{', '.join(sorted(pins))}.",
                           hint="Launch it on a new cluster name, or `sky down` this one first.")
        if need > rec.num_nodes:
            raise SkyError(f"Cluster {name} has {rec.num_nodes} node(s); the task needs {need}.",
                           hint="Launch it on a new cluster name, or `sky down` this one first.")
        info, placement, reused = rec.cluster_info(), None, True
        gpus = int(rec.metadata.get("gpus_per_node") or 0)
        vcpus = rec.metadata.get("vcpus_per_node")
        log(f"Reusing UP cluster {name} ({rec.cloud}/{rec.region}, {rec.instance_type}).")
    else:
        ask = None if yes or not sys.stdin.isatty() else _ask
        info, placement = provision(task, name, clouds=clouds, retry_until_up=retry_until_up,
                                    sort_by=sort_by, log=log, confirm=ask)
        gpus = _gpus_per_node(task, placement)
        vcpus = getattr(placement.offer, "vcpus", None)
    rt.prepare(info, task, num_gpus_per_node=gpus, node_cpus=vcpus, notify=log)
    cstate.upsert(name, info=info.to_json())  # node roots may have been resolved just now
    rec = cstate.get(name)
    if rec and rec.autostop_minutes is not None and rec.autostop_minutes >= 0 and not reused:
        rt.set_autostop(info, rec.autostop_minutes, rec.autostop_down)
    result = LaunchResult(name, None, 0, None, placement, reused)
    for i, t in enumerate(tasks):
        if i:
            rt.prepare(info, t, num_gpus_per_node=gpus, node_cpus=vcpus, notify=log)
        from skybroker.core.jobs import run_job

        outcome = run_job(name, info, t, with_setup=True, detach=detach_run or not stream,
                          on_line=on_line or _out, log=log)
        result.job_id, result.status = outcome.job_id, outcome.status
        result.returncode, result.message = outcome.returncode or 0, outcome.message
        if result.returncode:
            break
    return result
