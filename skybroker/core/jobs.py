"""Cluster jobs: submit (exec), follow, queue, logs and cancel, mirrored into the state DB."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from skybroker.errors import ClusterNotFoundError, SkyError
from skybroker.state import clusters as cstate
from skybroker.state import events
from skybroker.state import jobs as jstate


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def up_cluster(name: str) -> tuple[cstate.ClusterRecord, Any]:
    rec = cstate.get(name)
    if rec is None:
        raise ClusterNotFoundError(f"Cluster {name!r} does not exist.",
                                   hint="`sky status` lists clusters; `sky launch -c NAME` creates one.")
    if rec.status != cstate.UP or not rec.info:
        raise SkyError(f"Cluster {name!r} is {rec.status}, not UP.",
                       hint=f"`sky start {name}` (if STOPPED) or `sky status --refresh`.")
    return rec, rec.cluster_info()


def _mirror(cluster: str, row: dict[str, Any]) -> None:
    jstate.upsert(jstate.JobRecord(
        cluster=cluster, job_id=int(row["id"]), name=row.get("name"), status=row["status"],
        submitted_at=row.get("submitted"), started_at=row.get("started"), ended_at=row.get("ended"),
        returncode=row.get("rc"), log_dir=f".sky/jobs/{row['id']}",
        pids=_loads(row.get("pids"))))


def _loads(text: Any) -> dict:
    import json

    if isinstance(text, dict):
        return text
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def run_job(name: str, info: Any, task: Any, *, with_setup: bool, detach: bool,
            on_line: Callable[[str], None] | None, log: Callable[[str], None] = _err):
    """Submit one task as a job and (unless detached) stream it until it ends.

    Ctrl-C while streaming detaches: the job keeps running on the cluster.
    """
    from skybroker.runtime import cluster as rt

    spec = rt.job_spec(task, with_setup=with_setup)
    submitted = time.time()

    seen: list[int] = []

    def got_id(job_id: int) -> None:
        seen.append(job_id)
        _mirror(name, {"id": job_id, "name": spec["name"], "status": jstate.PENDING,
                       "submitted": submitted})
        log(f"Job {job_id} submitted to {name}." + ("" if detach else " Streaming its logs (Ctrl-C detaches)."))

    try:
        outcome = rt.submit(info, spec, follow=not detach, on_line=on_line, on_job_id=got_id)
    except KeyboardInterrupt:
        jid = f" {seen[0]}" if seen else ""
        log(f"Detached. The job keeps running: `sky logs {name}{jid}` to follow, "
            f"`sky cancel {name}{jid}` to stop.")
        return rt.JobOutcome(seen[0] if seen else -1, None, 0)
    if outcome.status is not None:
        jrec = jstate.get(name, outcome.job_id)
        if jrec is not None:
            jrec.status, jrec.returncode, jrec.ended_at = outcome.status, outcome.returncode, time.time()
            jstate.upsert(jrec)
        events.add("job.end", f"job {outcome.job_id} {outcome.status} {outcome.message}".strip(),
                   cluster=name, job_id=outcome.job_id)
        if outcome.status == jstate.FAILED_SETUP:
            log(f"Job {outcome.job_id} FAILED_SETUP: {outcome.message}. Setup log: "
                f"`sky logs {name} {outcome.job_id}`.")
        elif outcome.status != jstate.SUCCEEDED:
            log(f"Job {outcome.job_id} {outcome.status}" + (f": {outcome.message}" if outcome.message else "."))
        _after_lost_node(name, outcome, log)
        if outcome.status != jstate.SUCCEEDED and not outcome.returncode:
            outcome.returncode = 1
    return outcome


def _after_lost_node(name: str, outcome: Any, log: Callable[[str], None]) -> None:
    """A job that lost a node says so; then the cluster's status is refreshed from the cloud."""
    if "was lost" not in (outcome.message or ""):
        return
    from skybroker.core.lifecycle import refresh

    rec = refresh(name)
    log(f"Cluster {name} is now {rec.status if rec else 'gone'}"
        + (f": {rec.last_error}" if rec and rec.last_error else "."))


def exec_task(name: str, task: Any, *, detach: bool = False,
              on_line: Callable[[str], None] | None = None, log: Callable[[str], None] = _err):
    """`sky exec`: sync the workdir and run the task's `run` (no setup) as a new job."""
    from skybroker.core.launch import validate_local_inputs
    from skybroker.runtime import cluster as rt

    validate_local_inputs(task)
    rec, info = up_cluster(name)
    need = int(getattr(task, "num_nodes", 1) or 1)
    if need > rec.num_nodes:
        raise SkyError(f"Cluster {name} has {rec.num_nodes} node(s); the task needs {need}.")
    rt.prepare(info, task, num_gpus_per_node=int(rec.metadata.get("gpus_per_node") or 0),
               node_cpus=rec.metadata.get("vcpus_per_node"), notify=log)
    return run_job(name, info, task, with_setup=False, detach=detach,
                   on_line=on_line or (lambda s: print(s, flush=True)), log=log)


def queue(name: str) -> list[jstate.JobRecord]:
    """The cluster's jobs, fresh from its agent when reachable (else the last known)."""
    from skybroker.runtime import cluster as rt

    rec = cstate.get(name)
    if rec is None:
        raise ClusterNotFoundError(f"Cluster {name!r} does not exist.")
    if rec.status == cstate.UP and rec.info:
        for row in rt.queue(rec.cluster_info()):
            _mirror(name, row)
    return jstate.list_jobs(name)


def logs(name: str, job_id: int | None = None, *, follow: bool = True,
         on_line: Callable[[str], None] | None = None):
    """Print a job's log (default: the latest job); from the cluster, else the local copy."""
    from skybroker.runtime import cluster as rt

    on_line = on_line or (lambda s: print(s, flush=True))
    rec = cstate.get(name)
    if rec is None:
        raise ClusterNotFoundError(f"Cluster {name!r} does not exist.")
    if job_id is None:
        jobs = queue(name) if rec.status == cstate.UP else jstate.list_jobs(name)
        if not jobs:
            raise SkyError(f"Cluster {name} has no jobs yet.")
        job_id = jobs[-1].job_id
    if rec.status == cstate.UP and rec.info:
        try:
            out = rt.logs(rec.cluster_info(), job_id, follow=follow, on_line=on_line)
        except KeyboardInterrupt:
            return rt.JobOutcome(job_id, None, 0)
        if out.status is not None:
            j = jstate.get(name, job_id)
            if j is not None:
                j.status, j.returncode = out.status, out.returncode
                jstate.upsert(j)
            _after_lost_node(name, out, _err)
        return out
    path = rt.local_log_path(name, job_id)
    if not path.exists() or not path.stat().st_size:
        raise SkyError(f"No log of job {job_id} on {name} is kept here, and the cluster is {rec.status}.")
    for line in path.read_text(errors="replace").splitlines():
        on_line(line)
    j = jstate.get(name, job_id)
    return rt.JobOutcome(job_id, j.status if j else None, j.returncode if j else None)


def cancel(name: str, job_ids: list[int] | None = None) -> list[int]:
    """Cancel jobs (None: all unfinished) by killing their processes on every node."""
    from skybroker.runtime import cluster as rt

    rec, info = up_cluster(name)
    done = rt.cancel(info, job_ids)
    for j in done:
        jrec = jstate.get(name, j)
        if jrec is not None:
            jrec.status, jrec.ended_at = jstate.CANCELLED, time.time()
            jstate.upsert(jrec)
        events.add("job.cancel", f"job {j} cancelled", cluster=name, job_id=j)
    return done
