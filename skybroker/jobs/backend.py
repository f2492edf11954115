"""What the controller does to the world: launch a cluster of a type, observe it, terminate it.

Why a seam: the controller's loop (decide, persist, act) is the same against real clouds and
against the fast fake cloud of the benchmark; this module is the real side. A launch goes
through the optimizer's plan (spot or on-demand variant of the task, recently preempted zones
blocked) and the cloud-agnostic failover loop, then the cluster runtime prepares the nodes and
submits the task with the managed-job environment (progress file, time scale, run start).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skybroker.errors import SkyError

PROGRESS_FILE = ".sky/managed_progress"  # under the head node's root (its $HOME on local nodes)
_PROGRESS_TIMEOUT_S = 5.0


@dataclass
class Launched:
    cluster: str
    info: dict[str, Any]
    placement: dict[str, Any]
    cluster_job_id: int | None
    zone: str | None
    price: float  # $/h for the whole cluster


@dataclass
class Observation:
    alive: bool  # the provider says every node runs
    preempted: bool  # a spot node was reclaimed (or the provider reports it gone)
    task: str | None  # the cluster job's status (RUNNING, SUCCEEDED, FAILED, FAILED_SETUP, ...)
    progress: float | None = None  # what the task reported (job seconds of work), if anything
    detail: str = ""
    ended_at: float | None = None  # when the task ended (the node's clock), if it did


def _task(job: Any, spot: bool) -> Any:
    from skybroker.task import Task

    task = Task.from_yaml_config(job.task)
    task.resources = [r.copy(use_spot=spot) for r in task.resources] or task.resources
    return task


def _clouds(task: Any) -> list[str] | None:
    pins = {getattr(r, "cloud", None) for r in task.resources or []}
    return sorted(pins) if pins and None not in pins else None


class NoPlacementError(SkyError):
    """The optimizer finds no placement at all for the job (not a stock-out: nothing fits)."""


def _plan(task: Any, blocked: list[tuple]) -> Any:
    from skybroker.optimizer import optimize

    try:
        return optimize(task, clouds=_clouds(task), blocked=blocked)
    except SkyError:
        pass
    try:  # every zone was avoided: try them anyway
        return optimize(task, clouds=_clouds(task))
    except SkyError as e:
        raise NoPlacementError(str(e)) from None


def _spec_maker(task: Any, name: str) -> Any:
    from skybroker.clouds.base import ClusterSpec

    def make(p: Any) -> ClusterSpec:
        res = task.resources[getattr(p, "resources_index", 0)] if task.resources else None
        return ClusterSpec(
            cluster_name=name, cloud=p.offer.cloud, region=p.offer.region, zone=p.offer.zone,
            instance_type=p.offer.instance_type, spot=bool(p.spot), num_nodes=p.num_nodes,
            disk_size_gb=int(getattr(res, "disk_size", None) or 256),
            image_id=getattr(res, "image_id", None),
            ports=[str(x) for x in (getattr(res, "ports", None) or [])],
            labels=dict(getattr(res, "labels", None) or {}))

    return make


def placement_json(p: Any) -> dict[str, Any]:
    o = p.offer
    return {"cloud": o.cloud, "region": o.region, "zone": o.zone, "instance_type": o.instance_type,
            "spot": bool(p.spot), "num_nodes": p.num_nodes, "hourly_cost": float(p.hourly_cost),
            "price_spot": None if o.spot_price is None else float(o.spot_price) * p.num_nodes,
            "price_od": float(o.price) * p.num_nodes}


class RealBackend:
    """Clusters through the optimizer, failover, provisioners and the cluster runtime."""

    def launch(self, job: Any, spot: bool, name: str, blocked: list[tuple],
               env: dict[str, str]) -> Launched:
        """Provision ``name`` as spot/on-demand and submit the task (raises on failure)."""
        from skybroker.core.failover import provision_with_failover
        from skybroker.runtime import cluster as rt
        from skybroker.state import clusters as cstate
        from skybroker.state import events

        task = _task(job, spot)
        plan = _plan(task, blocked)

        def before(p: Any, spec: Any) -> None:
            cstate.upsert(name, status=cstate.INIT, cloud=p.offer.cloud, region=p.offer.region,
                          zone=p.offer.zone, instance_type=p.offer.instance_type, spot=bool(p.spot),
                          num_nodes=p.num_nodes, hourly_price=float(p.hourly_cost),
                          metadata={"launch_pid": os.getpid(), "managed_job": job.id})

        try:
            info, p, _ = provision_with_failover(plan, _spec_maker(task, name), before_attempt=before)
        except BaseException:
            rec = cstate.get(name)
            if rec is not None and rec.info is None:
                cstate.remove(name)
            raise
        now = time.time()
        cstate.upsert(name, status=cstate.UP, info=info.to_json(), launched_at=now,
                      metadata={"managed_job": job.id, "task": getattr(task, "name", None)})
        cstate.usage_start(cstate.get(name), now)
        events.add("cluster.up", f"managed job {job.id}: {p.describe()}", cluster=name)
        gpus = int(getattr(p.offer, "accelerator_count", 0) or 0)
        rt.prepare(info, task, num_gpus_per_node=gpus)
        job_id = self.submit(info, task, env)
        return Launched(name, info.to_json(), placement_json(p), job_id, p.offer.zone,
                        float(p.hourly_cost))

    def submit(self, info: Any, task: Any, env: dict[str, str]) -> int:
        from skybroker.runtime import cluster as rt

        spec = rt.job_spec(task, with_setup=True)
        head_root = rt.node_root(info.head)
        spec["envs"].update(env, SKYBROKER_PROGRESS_FILE=f"{head_root}/{PROGRESS_FILE}")
        return rt.submit(info, spec, follow=False).job_id

    def resubmit(self, job: Any, env: dict[str, str]) -> int:
        from skybroker.clouds.base import ClusterInfo

        info = ClusterInfo.from_json(job.cluster_info)
        return self.submit(info, _task(job, bool(job.placement and job.placement.get("spot"))), env)

    def observe(self, job: Any, want_task: bool = True) -> Observation:
        from skybroker.clouds.base import PREEMPTED, RUNNING, ClusterInfo
        from skybroker.clouds.registry import get_provisioner

        info = ClusterInfo.from_json(job.cluster_info)
        try:
            states = get_provisioner(info.cloud).query(info)
        except SkyError as e:
            return Observation(True, False, None, None, f"query failed: {e}")
        vals = set(states.values())
        if vals != {RUNNING}:
            status, ended = None, None
            if want_task and info.provider_data.get("runner") == "local":
                # The nodes are gone but their files stay until terminate: did the task finish
                # just before (a preemption right at the end must not rerun it)?
                status, ended = self._task_status(info, job.cluster_job_id)
            return Observation(False, PREEMPTED in vals or bool(info.spot), status, None,
                               ", ".join(f"{k}={v}" for k, v in sorted(states.items())), ended)
        status, ended = None, None
        if want_task and job.cluster_job_id is not None:
            try:
                status, ended = self._task_status(info, job.cluster_job_id, strict=True)
            except SkyError as e:
                return Observation(True, False, None, None, f"queue failed: {e}")
        return Observation(True, False, status, self.progress(info), "", ended)

    @staticmethod
    def _task_status(info: Any, job_id: int | None, strict: bool = False) -> tuple[Any, Any]:
        """(status, ended) of the task's cluster job, from the head node's agent."""
        from skybroker.runtime import cluster as rt

        if job_id is None:
            return None, None
        try:
            for row in rt.queue(info):
                if int(row["id"]) == int(job_id):
                    return row["status"], row.get("ended")
        except (SkyError, OSError, ValueError):
            if strict:
                raise
        return None, None

    def progress(self, info: Any) -> float | None:
        """The task's own report: seconds of work, or a fraction/percent of the duration."""
        from skybroker.runtime import cluster as rt

        path = f"{rt.node_root(info.head)}/{PROGRESS_FILE}"
        if info.provider_data.get("runner") == "local":
            try:
                text = Path(path).read_text()
            except OSError:
                return None
        else:
            try:
                rc, out = rt.head_runner(info).run(f"cat {path} 2>/dev/null")
            except Exception:  # noqa: BLE001 (a progress read never fails the job)
                return None
            text = out.decode(errors="replace") if rc == 0 else ""
        return parse_progress(text)

    def terminate(self, name: str, info: dict[str, Any] | None, log_dir: Path | None) -> None:
        """Archive the run's log (best effort), then terminate and forget the cluster."""
        from skybroker.clouds.base import ClusterInfo
        from skybroker.clouds.registry import get_provisioner
        from skybroker.core import lifecycle
        from skybroker.state import clusters as cstate

        if info and log_dir is not None:
            with contextlib.suppress(Exception):
                archive_log(ClusterInfo.from_json(info), log_dir / f"{name}.log")
        if cstate.get(name) is not None:
            lifecycle.down(name, log=lambda _m: None)
        elif info:
            get_provisioner(info["cloud"]).terminate(ClusterInfo.from_json(info))

    def exists(self, name: str, job_id: int) -> bool:
        """Whether this job's cluster ``name`` exists (a cluster of that name that the job did
        not create is never touched: the launch refuses instead)."""
        from skybroker.state import clusters as cstate

        rec = cstate.get(name)
        if rec is None:
            return False
        if rec.metadata.get("managed_job") != job_id:
            raise SkyError(f"a cluster named {name!r} exists and is not managed job {job_id}'s",
                           hint=f"`sky down {name}` or rename it; the job retries.")
        return True


def parse_progress(text: str, duration_s: float | None = None) -> float | None:
    """``"1234.5"`` = job seconds of work; ``"42%"`` or ``"0.42/1"`` style fractions are
    returned negative-coded as -fraction so the caller (who knows the duration) scales them."""
    s = (text or "").strip().splitlines()[-1].strip() if (text or "").strip() else ""
    if not s:
        return None
    try:
        if s.endswith("%"):
            return -float(s[:-1]) / 100.0
        if s.startswith("fraction="):
            return -float(s.split("=", 1)[1])
        return float(s)
    except ValueError:
        return None


def archive_log(info: Any, dest: Path) -> None:
    """Keep the cluster's job output next to the managed job (the node is about to go), in the
    very form `sky jobs logs` printed while it ran (so following it never repeats lines)."""
    from skybroker.runtime import cluster as rt

    root = Path(rt.node_root(info.head)) / ".sky" / "jobs"
    if info.provider_data.get("runner") != "local" or not root.is_dir():
        return
    lines: list[str] = []
    for job_id in sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()):
        with contextlib.suppress(Exception):
            rt.logs(info, job_id, follow=False, on_line=lines.append)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("".join(line + "\n" for line in lines))
