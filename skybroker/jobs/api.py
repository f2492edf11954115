"""The managed-jobs API: launch, queue, cancel, logs (the CLI is a thin layer over these).

`launch` resolves everything a job needs for its whole life once (policy, deadline terms,
clock) and stores it with the task; the controller only ever reads the DB. A job whose spot
placements all lie in trace-bound local zones runs on the trace's clock (a rehearsal); any
other job ticks every `jobs.tick_seconds` (config, default 60 s) and polls its cluster every
`jobs.poll_seconds` (default 2 s) between ticks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skybroker.errors import SkyError
from skybroker.jobs import model as M
from skybroker.jobs import state as S

H = 3600.0
DEFAULT_TICK_S = 60.0
DEFAULT_POLL_S = 2.0
DEFAULT_DEADLINE_POLICY = "uniform_progress"


def _load_task(task: Any) -> Any:
    from skybroker.task import Task

    if isinstance(task, (str, Path)):
        path = Path(task)
        task = Task.from_yaml(str(path))
        base = path.resolve().parent
    else:
        base = Path.cwd()
    if getattr(task, "workdir", None):
        task.workdir = str((base / Path(task.workdir).expanduser()).resolve())
    if getattr(task, "file_mounts", None):
        task.file_mounts = {dst: (str((base / Path(src).expanduser()).resolve())
                                  if isinstance(src, str) and "://" not in src else src)
                            for dst, src in task.file_mounts.items()}
    return task


def resolve_policy(name: str | None, deadline_h: float | None) -> tuple[str | None, str]:
    """(deadline policy or None, recovery strategy) from a --policy / job_recovery.strategy."""
    from skybroker.policy import canonical_name

    recovery = "failover"
    key = (name or "").strip().lower().replace("-", "_")
    if key in M.RECOVERY_STRATEGIES:
        recovery, key = key, ""
    if not key:
        return (DEFAULT_DEADLINE_POLICY if deadline_h is not None else None), recovery
    try:
        return canonical_name(key), recovery
    except KeyError as e:
        raise SkyError(f"{e} Or a recovery strategy: {', '.join(M.RECOVERY_STRATEGIES)}.") from None


def _market_binding(task: Any, start_by: float) -> tuple[dict[str, Any], Any] | None:
    """If every spot placement of the task is in a trace-bound local zone: the job's clock."""
    from skybroker.clouds.local.spot_market import configured_market

    market = configured_market()
    if market is None:
        return None
    from skybroker.optimizer import optimize

    spot_task = _copy_spot(task, True)
    try:
        plan = optimize(spot_task, clouds=_pinned_clouds(task))
    except SkyError:
        return None
    zones = set()
    for p in plan.placements:  # lazy: stops at the first placement outside the market
        if p.offer.cloud != "local" or p.offer.zone not in market.zones:
            return None
        zones.add(p.offer.zone)
    if not zones:
        return None
    mzs = [market.zones[z] for z in sorted(zones)]
    first = mzs[0]
    for mz in mzs[1:]:
        off = (mz.epoch - first.epoch) / first.seconds_per_tick
        if (mz.seconds_per_tick, mz.gap_s) != (first.seconds_per_tick, first.gap_s) or \
                abs(off - round(off)) > 1e-6:
            raise SkyError(f"trace-bound zones {', '.join(sorted(zones))} must share one "
                           "seconds_per_tick, trace tick length and tick grid to run one job")
    tick = max(first.tick_at(start_by) + 1, first.start_tick)  # not before the market opens
    t0 = first.wall_of_tick(tick)
    return {"zones": {mz.zone: mz.tick_at(t0 + 1e-6) for mz in mzs}, "t0": t0}, first


def _copy_spot(task: Any, spot: bool) -> Any:
    import copy

    t = copy.copy(task)
    t.resources = [r.copy(use_spot=spot) for r in task.resources]
    return t


def _pinned_clouds(task: Any) -> list[str] | None:
    pins = {getattr(r, "cloud", None) for r in task.resources or []}
    return sorted(pins) if pins and None not in pins else None


def _params(task: Any, deadline_h: float | None, duration_h: float | None,
            restart_overhead_h: float | None, policy: str | None,
            max_restarts_on_errors: int | None, hazards: str | None = None) -> M.Params:
    """Everything about the job but its clock: CLI options over `resources.job_recovery`."""
    if not task.resources:
        raise SkyError("the task has no resources to run on")
    jr = dict(getattr(task.resources[0], "job_recovery", None) or {})
    deadline_h = deadline_h if deadline_h is not None else jr.get("deadline")
    duration_h = duration_h if duration_h is not None else jr.get("duration")
    overhead_h = restart_overhead_h if restart_overhead_h is not None else jr.get("restart_overhead")
    restarts = max_restarts_on_errors if max_restarts_on_errors is not None else \
        int(jr.get("max_restarts_on_errors") or 0)
    pol, recovery = resolve_policy(policy or jr.get("strategy"), deadline_h)
    if pol is not None and (deadline_h is None or duration_h is None):
        raise SkyError(f"policy {pol!r} needs a deadline and a duration "
                       "(--deadline 60h --duration 48h, or resources.job_recovery).",
                       hint="Without a deadline use --policy failover or eager_next_region.")
    policy_params = None
    if hazards is not None:
        from skybroker.policy.hazard_fit import load_hazards

        if pol != "hazard_dp":
            raise SkyError(f"--hazards is the run-length model of the best policy (hazard_dp); "
                           f"policy {pol!r} does not use one.", hint="Add --policy best.")
        try:
            policy_params = {"hazards": load_hazards(hazards).tolist()}
        except ValueError as e:
            raise SkyError(str(e)) from None
    if deadline_h is not None and duration_h is not None and duration_h > deadline_h:
        raise SkyError(f"the job needs {duration_h:g}h of work but the deadline is {deadline_h:g}h")
    return M.Params(
        policy=pol, recovery=recovery,
        # Rounded to the microsecond: '130m' is 2.1666...h, and 7799.999999 s would floor to
        # one tick less than the user asked for.
        deadline_s=None if deadline_h is None or pol is None else round(float(deadline_h) * H, 6),
        duration_s=None if duration_h is None else round(float(duration_h) * H, 6),
        overhead_s=round(float(overhead_h or 0.0) * H, 6),
        wants_spot=any(bool(r.use_spot) for r in task.resources),
        max_restarts_on_errors=restarts, nodes=int(task.num_nodes or 1),
        policy_params=policy_params)


def _set_clock(task: Any, params: M.Params) -> Any:
    """Tick length and tick 0: the trace's when the job is a rehearsal, else real time."""
    from skybroker.config import load_config

    cfg = (load_config().get("jobs") or {})
    now = time.time()
    binding = _market_binding(task, now + float(cfg.get("startup_seconds", 1.5)))
    if binding is not None:
        spec, mz = binding
        params.market = spec
        params.gap_s, params.wall_per_tick = mz.gap_s, mz.seconds_per_tick
        params.t0 = float(spec.pop("t0"))
        params.offset = min(0.2 * mz.seconds_per_tick, 0.5)
        params.poll_s = 0.0
        return mz
    tick = float(cfg.get("tick_seconds", DEFAULT_TICK_S))
    params.gap_s = params.wall_per_tick = tick
    params.t0, params.poll_s = now, float(cfg.get("poll_seconds", DEFAULT_POLL_S))
    return None


def launch(task: Any, name: str | None = None, *, deadline_h: float | None = None,
           duration_h: float | None = None, restart_overhead_h: float | None = None,
           policy: str | None = None, max_restarts_on_errors: int | None = None,
           hazards: str | None = None, retry_until_up: bool = False,
           start_controller: bool = True) -> int:
    """Submit a managed job; returns its id. Options override `resources.job_recovery`.

    ``hazards``: a hazards JSON (`sky replay --fit-hazards ... --save-hazards`) for the best
    policy's run-length model, fitted on your zone's history. ``retry_until_up``: when the
    first launch fails for good on every placement (quota, credentials, invalid request),
    keep retrying instead of ending the job FAILED_NO_RESOURCE.
    """
    task = _load_task(task)
    params = _params(task, deadline_h, duration_h, restart_overhead_h, policy,
                     max_restarts_on_errors, hazards)
    params.retry_until_up = bool(retry_until_up)
    _set_clock(task, params)
    _check_feasible(task, params)
    job_id = S.add(name or task.name, task.to_yaml_config(), params.to_json(),
                   M.Model.start(params).to_json())
    if start_controller:
        from skybroker.jobs.controller import ensure_running

        ensure_running()
    return job_id


def summary(task: Any, *, deadline_h: float | None = None, duration_h: float | None = None,
            restart_overhead_h: float | None = None, policy: str | None = None,
            max_restarts_on_errors: int | None = None, hazards: str | None = None) -> list[str]:
    """What `launch` would do, in a few lines (for the confirmation prompt)."""
    from skybroker.optimizer import optimize

    task = _load_task(task)
    p = _params(task, deadline_h, duration_h, restart_overhead_h, policy, max_restarts_on_errors,
                hazards)
    lines = []
    if p.policy:
        lines.append(f"policy {p.policy}: deadline {p.deadline_s / H:g}h, work {p.duration_s / H:g}h, "
                     f"restart overhead {p.overhead_s / H:g}h (placement after preemption: "
                     f"{p.recovery}{'; run-length model from ' + hazards if hazards else ''})")
    else:
        lines.append(f"no deadline: {p.recovery}, on {'spot' if p.wants_spot else 'on-demand'}")
    kinds = [True, False] if p.policy else [p.wants_spot]
    for spot in kinds:
        try:
            best = optimize(_copy_spot(task, spot), clouds=_pinned_clouds(task)).best
            lines.append(f"{'spot' if spot else 'on-demand'}: {best.describe()} at "
                         f"${float(best.hourly_cost):.4f}/h")
        except SkyError as e:
            lines.append(f"{'spot' if spot else 'on-demand'}: none ({str(e).splitlines()[0]})")
    mz = _set_clock(task, M.Params.from_json(p.to_json()))
    if mz is not None:
        lines.append(f"rehearsal on {Path(mz.trace_path).name} (zone {mz.zone}): one "
                     f"{mz.gap_s:g} s tick per {mz.seconds_per_tick:g} s of wall time "
                     f"({mz.gap_s / mz.seconds_per_tick:g}x)")
    return lines


def _check_feasible(task: Any, params: M.Params) -> None:
    """Fail at submission (FAILED_NO_RESOURCE-like) when no placement can ever run the job."""
    from skybroker.optimizer import optimize

    kinds = [params.wants_spot] if params.policy is None else [True, False]
    errors = []
    for spot in kinds:
        try:
            optimize(_copy_spot(task, spot), clouds=_pinned_clouds(task))
            return
        except SkyError as e:
            errors.append(str(e))
    raise SkyError("no placement can run this managed job: " + errors[-1])


def _placement_text(pl: dict[str, Any] | None) -> str:
    if not pl:
        return "-"
    kind = "spot" if pl.get("spot") else "on-demand"
    return f"{pl['cloud']}/{pl['region']}/{pl.get('zone') or '-'} {pl['instance_type']} ({kind})"


def describe(job: S.ManagedJob) -> dict[str, Any]:
    """One job as a plain dict: what `sky jobs queue` shows (hours are job time)."""
    p, m = M.Params.from_json(job.params), M.Model.from_json(job.model)
    pl = job.placement or {}
    slack = None if job.terminal else M.slack_s(p, m)
    return {
        "id": job.id, "name": job.name, "status": job.status, "policy": p.policy or p.recovery,
        "cluster": job.cluster, "placement": _placement_text(job.placement),
        "submitted_at": job.submitted_at, "ended_at": job.ended_at,
        "spot_h": m.spot_s / H, "od_h": m.od_s / H, "cost": m.cost,
        "projected_cost": m.cost if job.terminal else
        M.projected_cost(p, m, pl.get("price_spot"), pl.get("price_od")),
        "work_h": m.work / H, "duration_h": None if p.duration_s is None else p.duration_s / H,
        "deadline_h": None if p.deadline_s is None else p.deadline_s / H,
        "elapsed_h": m.elapsed / H, "slack_h": None if slack is None else slack / H,
        "on_track": None if job.terminal else M.on_track(p, m), "preemptions": m.preemptions, "switches": m.switches,
        "restarts_on_errors": job.error_restarts, "failure_reason": job.failure_reason,
        "rehearsal": bool(p.market), "time_scale": p.scale,
    }


def queue(all_jobs: bool = True) -> list[dict[str, Any]]:
    return [describe(j) for j in S.list_jobs(active_only=not all_jobs)]


def _resolve(ids: list[int | str] | None, all_: bool) -> list[S.ManagedJob]:
    if all_:
        return S.list_jobs(active_only=True)
    out: list[S.ManagedJob] = []
    for x in ids or []:
        found = S.find(x)
        if not found:
            raise SkyError(f"no managed job {x!r}", hint="`sky jobs queue` lists them.")
        out.extend(found)
    return out


def cancel(ids: list[int | str] | None = None, all_: bool = False) -> list[int]:
    """Ask the controller to cancel jobs (it terminates their clusters); returns their ids."""
    jobs = [j for j in _resolve(ids, all_) if not j.terminal]
    for j in jobs:
        S.update(j.id, cancel_requested=True, status=S.CANCELLING,
                 event=("jobs.cancel", "cancel requested", None))
    if jobs:
        from skybroker.jobs.controller import ensure_running

        ensure_running()
    return [j.id for j in jobs]


def logs(job: int | str | None = None, *, follow: bool = False, controller: bool = False,
         on_line: Callable[[str], None] = print, poll_s: float = 1.0) -> str:
    """Print a job's task output (archived runs, then the current cluster's), or with
    ``controller`` its decision/event log. Returns the job's status when done."""
    from skybroker.jobs.controller import jobs_dir

    if job is None:
        jobs = S.list_jobs()
        if not jobs:
            raise SkyError("no managed jobs yet")
        j = jobs[-1]
    else:
        found = _resolve([job], False)
        j = found[-1]
    printed: dict[str, int] = {}
    seen_events = 0
    while True:
        j = S.get(j.id) or j
        if controller:
            evs = S.events(j.id, limit=100000)
            for e in evs[seen_events:]:
                on_line(f"{time.strftime('%F %T', time.localtime(e['time']))} {e['kind']:<18} "
                        f"{e['message'] or ''}")
            seen_events = len(evs)
        else:
            d = jobs_dir() / "logs" / str(j.id)
            # Keyed by cluster: an archived log continues what was printed while it ran.
            texts = [(f.stem, f.read_text(errors="replace")) for f in sorted(d.glob("*.log"),
                                                                            key=_run_order)] \
                if d.is_dir() else []
            if j.cluster and j.cluster_info and j.cluster_job_id is not None:
                texts.append((j.cluster, _current_log(j)))
            for key, text in texts:
                new = text[printed.get(key, 0):]
                if new:
                    for line in new.rstrip("\n").split("\n"):
                        on_line(line)
                printed[key] = max(printed.get(key, 0), len(text))  # a vanishing log: no rewind
        if not follow or j.terminal:
            if j.terminal and j.status != S.SUCCEEDED and j.failure_reason and not controller:
                on_line(f"Managed job {j.id} {j.status}: {j.failure_reason}")
            return j.status
        time.sleep(poll_s)


def _run_order(f: Path) -> tuple[int, str]:
    """Archived logs in launch order (cluster names end in the run number)."""
    tail = f.stem.rsplit("-", 1)[-1]
    return (int(tail) if tail.isdigit() else 0, f.stem)


def _current_log(j: S.ManagedJob) -> str:
    from skybroker.clouds.base import ClusterInfo
    from skybroker.runtime import cluster as rt

    lines: list[str] = []
    try:
        rt.logs(ClusterInfo.from_json(j.cluster_info), int(j.cluster_job_id), follow=False,
                on_line=lines.append)
    except Exception:  # noqa: BLE001 (the cluster may be going away right now)
        return ""
    return "".join(line + "\n" for line in lines)


def wait(job_id: int, timeout: float = 600.0, poll_s: float = 0.2) -> S.ManagedJob:
    """Block until the job is terminal (for scripts and tests)."""
    end = time.time() + timeout
    while time.time() < end:
        j = S.get(job_id)
        if j is not None and j.terminal:
            return j
        time.sleep(poll_s)
    raise SkyError(f"managed job {job_id} did not finish within {timeout:g}s")
