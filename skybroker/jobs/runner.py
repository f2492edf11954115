"""One managed job's loop step: observe -> decide (the policy + the shared guarantee) -> act.

Why this order of writes: the decision, the new tick model and the action it implies
(`pending`) are committed in one transaction *before* acting, and cleared after. A controller
killed with -9 between the two finds `pending` on restart and redoes it idempotently:
terminate the old cluster (if still there), terminate a half-launched new one, launch again.
So a job never has two clusters and a decision is never taken twice.
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any

from skybroker.errors import CapacityError, ResourcesUnavailableError, SkyError
from skybroker.jobs import model as M
from skybroker.jobs import state as S
from skybroker.jobs.backend import NoPlacementError
from skybroker.policy.base import NONE, SPOT

TASK_ENDED = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")
MAX_STEP_ERRORS = 3
NOTHING_FITS = "relax the task's resources or enable a cloud that offers them"
TASK_EVERY = 5  # polls between two reads of the task's status (ticks always read it)


def cluster_name(job: S.ManagedJob, run: int) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", (job.name or "job").lower()).strip("-")[:24] or "job"
    return f"{base}-{job.id}-{run}"


class MarketView:
    """Availability and preemptions of a trace-bound job, read at ticks (not wall time)."""

    def __init__(self, p: M.Params) -> None:
        from skybroker.clouds.local.spot_market import configured_market

        market = configured_market()
        spec = (p.market or {}).get("zones") or {}
        self.nodes = p.nodes
        # zone -> (its MarketZone, the trace tick of the job's tick 0 in that zone)
        self.zones = {z: (market.zones[z], int(t0)) for z, t0 in spec.items()
                      if market and z in market.zones}
        if not self.zones:
            raise SkyError("the job is bound to trace zones that are no longer configured "
                           f"({spec.get('zones')}); see local.spot_markets in config.yaml")

    @property
    def multi(self) -> bool:
        return len(self.zones) > 1

    def available(self, tick: int) -> bool | list[bool]:
        """Spot capacity at a tick: a bool, or one per zone (in name order) for several."""
        got = [mz.available_tick(t0 + tick, self.nodes) for mz, t0 in self.zones.values()]
        return got if self.multi else got[0]

    def name(self, idx: int) -> str:
        return list(self.zones)[idx]

    def preempted(self, zone: str | None, launch_tick: int, tick: int) -> bool:
        if (zone or "") not in self.zones:
            return False
        mz, t0 = self.zones[zone or ""]
        return mz.next_unavailable(t0 + launch_tick, self.nodes) <= t0 + tick


class JobRunner:
    """Holds one job's policy object and steps it; every fact lives in the DB row."""

    def __init__(self, job_id: int, backend: Any, log_root: Any = None) -> None:
        from skybroker.policy import get_policy

        self.id = job_id
        self.backend = backend
        self.log_root = log_root
        job = S.get(job_id)
        if job is None:
            raise SkyError(f"managed job {job_id} vanished")
        self.p = M.Params.from_json(job.params)
        self.policy = (get_policy(self.p.policy, **(self.p.policy_params or {}))
                       if self.p.policy else None)
        self.market = MarketView(self.p) if self.p.market else None
        self.errors = 0
        self.last_lag: tuple[int, float] | None = None  # (tick, seconds late) of the last decision
        self.cached: S.ManagedJob | None = None
        self.cancel_seen = False
        self.dirty = False
        self.polls = 0
        self.obs_cache: tuple[str, float, Any] | None = None

    # ---- the step ----

    def step(self) -> float | None:
        """Advance the job; returns the wall time to be called again (None: job over)."""
        try:
            nxt = self._step()
            self.errors = 0
            return nxt
        except Exception as e:  # noqa: BLE001 (one job's failure never stops the controller)
            import traceback

            print(f"job {self.id}: step failed:", flush=True)
            traceback.print_exc()  # into <home>/jobs/controller.log
            self.errors += 1
            S.add_event(self.id, "jobs.error", f"{type(e).__name__}: {e}")
            if self.errors >= MAX_STEP_ERRORS:
                self._finish(S.get(self.id), S.FAILED_CONTROLLER, f"controller error: {e}")
                return None
            return time.time() + min(self.p.wall_per_tick, 2.0)

    def poke(self) -> None:
        """Something outside changed the row (a cancel request): re-read it at the next step."""
        self.dirty = True

    def _step(self) -> float | None:
        # Polls between ticks touch no DB: the row is cached until this runner writes it or
        # the controller pokes it (cancel). Decisions always start from the stored row.
        job, self.cached = self.cached, None
        if job is None or self.dirty:
            self.dirty = False
            job = S.get(self.id)
        if job is None or job.terminal:
            return None
        if job.pending and job.pending.get("finish"):  # a crash while ending the job
            self._finish(job, job.pending["finish"], job.pending.get("reason") or "")
            return None
        if job.pending:
            self._act(job, M.Model.from_json(job.model), job.pending)
            job = S.get(self.id)
            if job is None or job.terminal:
                return None
        if job.cancel_requested:
            self._finish(job, S.CANCELLED, "cancelled by user")
            return None
        if job.status == S.PENDING:
            S.update(self.id, status=S.STARTING, started_at=time.time())
            job = S.get(self.id)
        m = M.Model.from_json(job.model)
        now = time.time()
        if now >= self.p.due(m.tick):
            return self._decide_and_act(job, m, now, None, on_tick=True)
        if job.cluster and self.p.poll_s > 0 and not self.market:
            # Every poll asks the provider (preemptions must be acted on within seconds); the
            # task's own status (a command on the head node) only every TASK_EVERY polls.
            self.polls += 1
            obs = self.backend.observe(job, want_task=self.polls % TASK_EVERY == 0)
            if not obs.alive or obs.task in TASK_ENDED:
                return self._decide_and_act(job, m, now, obs, on_tick=False)
            self.cached = job
            return min(self.p.due(m.tick), now + self.p.poll_s)
        return self.p.due(m.tick)

    def _decide_and_act(self, job: S.ManagedJob, m: M.Model, now: float, obs: Any,
                        on_tick: bool) -> float | None:
        p, t = self.p, m.tick
        if on_tick:
            dt = 0.0 if t == 0 else (p.gap_s if m.on_tick else t * p.gap_s - m.elapsed)
            self.last_lag = (t, now - p.due(t))
        else:
            dt = max((now - p.t0) * p.scale - m.elapsed, 0.0)
        M.credit(p, m, dt)
        m.on_tick = on_tick
        if on_tick:
            m.tick += 1
        if obs is None and job.cluster:
            obs = self._observe_tick(job, t, now)
        if (on_tick and self.market is not None and obs is not None and obs.task in TASK_ENDED
                and obs.ended_at is not None and obs.ended_at > p.t0 + t * p.wall_per_tick):
            obs.task = "RUNNING"  # it ended after this tick's boundary: count it at the next
        # The task's own outcome first: success ends the job whatever the model says.
        if obs is not None and obs.task == "SUCCEEDED":
            self._finish(job, S.SUCCEEDED, "", m)
            return None
        if obs is not None and obs.task in ("FAILED", "FAILED_SETUP", "CANCELLED") and obs.alive:
            if obs.task == "FAILED_SETUP":
                self._finish(job, S.FAILED_SETUP, "setup failed", m)
                return None
            if job.error_restarts >= p.max_restarts_on_errors:
                self._finish(job, S.FAILED, f"the task failed ({obs.task}); "
                             f"{job.error_restarts} restart(s) on errors used", m)
                return None
            cjid = self.backend.resubmit(job, self._env(job, m, t))
            S.update(self.id, model=m.to_json(), cluster_job_id=cjid,
                     error_restarts=job.error_restarts + 1,
                     event=("jobs.retry", f"task failed; restart {job.error_restarts + 1} of "
                            f"{p.max_restarts_on_errors} on the same cluster", None))
            return self._next(m)
        lost = self._lost(job, m, obs, t)
        fresh = None
        if obs is not None and obs.progress is not None:
            rep = obs.progress
            fresh = m.reported = -rep * float(p.duration_s or 0) if rep < 0 else rep
        behind = fresh is not None and not lost and fresh < m.work - p.gap_s
        if behind:  # the task's own checkpoint is a tick or more behind the model: adopt it
            m.work = float(fresh)
            if p.duration_s is not None:
                m.left = max(float(p.duration_s) - m.work, 0.0)
        # The model says done but the task has not said so: it ran past the estimate (or was
        # lost just before the end). Keep what runs; a relaunch is decided as if 1 s were left.
        overrun = M.model_done(p, m)
        override = float(p.duration_s) - min(1.0, float(p.duration_s)) if overrun else None
        avail = self._available(m, lost, t)
        snap = copy.deepcopy(m)
        x, cur, restart = M.decide(p, m, self.policy, avail, lost, override)
        if overrun and cur != NONE:
            m.prev, x, restart = cur, cur, False
        pending = self._pending(job, m, x, cur, lost, restart, t)
        self._record(job, m, snap, t, x, cur, avail, lost, restart, on_tick, now, pending,
                     fresh if behind else override)
        if pending:
            self._act(S.get(self.id), m, pending, snapshot=snap, lost=lost)
        return self._next(m)  # acting never moves the tick

    # ---- pieces ----

    def _observe_tick(self, job: S.ManagedJob, t: int, now: float) -> Any:
        """Observe for tick ``t``. Catching up on missed ticks (a restarted or late controller),
        one observation taken after a tick's boundary serves every tick up to now: the task's
        end is still placed at its own tick by its end time, and trace-bound preemptions are
        read from the trace."""
        p = self.p
        c = self.obs_cache
        behind = now >= p.due(t + 1)
        if behind and c is not None and c[0] == job.cluster and c[1] >= p.t0 + t * p.wall_per_tick:
            return copy.copy(c[2])
        obs = self.backend.observe(job, want_task=True)
        self.obs_cache = (job.cluster, now, copy.copy(obs))
        return obs

    def _lost(self, job: S.ManagedJob, m: M.Model, obs: Any, t: int) -> bool:
        if m.prev == NONE or not job.cluster:
            return m.prev != NONE  # decided to run but nothing runs (a failed launch)
        if self.market is not None and m.prev == SPOT:
            return self.market.preempted(m.zone, m.launch_tick, t)
        return obs is not None and not obs.alive

    def _available(self, m: M.Model, lost: bool, t: int) -> bool | list[bool]:
        if "spot" in m.no_resource:  # spot can never launch for this job
            return [False] * len(self.market.zones) if self.market and self.market.multi else False
        if self.market is not None:
            return self.market.available(t)
        if m.prev == SPOT and not lost:
            return True
        # No probe on real clouds: optimistic; a failed spot launch re-decides with False.
        return not any(a.get("tick") == t and a.get("all_spot") for a in m.avoid)

    def _pending(self, job: S.ManagedJob, m: M.Model, x: int, cur: int, lost: bool,
                 restart: bool, t: int) -> dict[str, Any] | None:
        old = job.cluster if job.cluster and (lost or x != cur) else None
        if not old and not restart:
            return None
        name = cluster_name(job, job.runs + 1) if restart else None
        zone = None
        if restart and x == SPOT and self.market is not None and self.market.multi:
            zone = self.market.name(m.zone_idx)  # finalize chose it, as in replay
        return {"tick": t, "terminate": old, "launch": x if restart else None, "name": name,
                "zone": zone}

    def _record(self, job, m, snap, t, x, cur, avail, lost, restart, on_tick, now, pending,
                work_used: float | None = None) -> None:
        data = {"tick": t, "on_tick": on_tick, "elapsed": snap.elapsed, "work": snap.work,
                "work_used": work_used,
                "rem_before": snap.rem, "prev": snap.prev, "cur": cur, "kind": x,
                "avail": [bool(a) for a in avail] if isinstance(avail, list) else bool(avail),
                "lost": bool(lost), "restart": bool(restart), "zone": m.zone_idx,
                "lag": round(now - self.p.due(t), 4) if on_tick else None, "cost": m.cost}
        status = job.status
        if lost and x == NONE or (pending and pending.get("launch") is not None and job.runs):
            status = S.RECOVERING
        S.update(self.id, model=m.to_json(), pending=pending, status=status,
                 event=("jobs.decision", f"tick {t}: {M.KIND_NAMES[x]}", data))

    def _env(self, job: S.ManagedJob, m: M.Model, t: int) -> dict[str, str]:
        p = self.p
        return {"SKYBROKER_MANAGED_JOB_ID": str(job.id),
                "SKYBROKER_JOB_TIME_SCALE": repr(p.scale),
                "SKYBROKER_RUN_STARTED_AT": repr(p.t0 + t * p.wall_per_tick),
                "SKYBROKER_RESTART_OVERHEAD_S": repr(p.overhead_s),
                "SKYBROKER_WORK_DONE_S": repr(m.work),
                "SKYBROKER_JOB_DURATION_S": repr(p.duration_s or 0.0)}

    def _blocked(self, m: M.Model, t: int, zone: str | None = None) -> list[tuple]:
        """Recently preempted zones (regions for eager_next_region), for 3 ticks; with
        ``zone`` (a multi-zone rehearsal), every other zone of the market instead."""
        if zone is not None and self.market is not None:
            return [("local", None, z, None, True) for z in self.market.zones if z != zone]
        out = []
        for a in m.avoid:
            if t - int(a.get("tick", -99)) <= 3 and a.get("cloud"):
                if self.p.recovery == "eager_next_region":
                    out.append((a["cloud"], a.get("region"), None, None, True))
                else:
                    out.append((a["cloud"], a.get("region"), a.get("zone"), None, True))
        return out

    def _act(self, job: S.ManagedJob, m: M.Model, pending: dict[str, Any],
             snapshot: M.Model | None = None, lost: bool = False) -> None:
        """Do what `pending` says, idempotently; clear it. A spot stock-out re-decides."""
        t = int(pending["tick"])
        log_dir = self.log_root / str(job.id) if self.log_root is not None else None
        old = pending.get("terminate")
        if old:
            if m.prev == SPOT or lost:
                pl = job.placement or {}
                m.avoid = [a for a in m.avoid if t - int(a.get("tick", -99)) <= 3]
                if lost and pl.get("spot"):
                    m.avoid.append({"tick": t, "cloud": pl.get("cloud"), "region": pl.get("region"),
                                    "zone": pl.get("zone")})
            self.backend.terminate(old, job.cluster_info, log_dir)
            S.update(self.id, cluster=None, cluster_info=None, cluster_job_id=None,
                     model=m.to_json(), event=("jobs.terminated", f"cluster {old} terminated", None))
        kind = pending.get("launch")
        if kind is None:
            m.price = 0.0 if m.prev == NONE else m.price
            S.update(self.id, pending=None, model=m.to_json())
            return
        name = pending["name"]
        if self.backend.exists(name, job.id):  # a launch interrupted by a crash: start clean
            self.backend.terminate(name, None, None)
        job = S.get(self.id)
        try:
            got = self.backend.launch(job, kind == SPOT, name,
                                      self._blocked(m, t, pending.get("zone")), self._env(job, m, t))
        except NoPlacementError as e:  # nothing fits at all (e.g. the catalog changed)
            self._no_resource(job, m, pending, kind, str(e).splitlines()[0], NOTHING_FITS,
                              snapshot, lost)
            return
        except (CapacityError, ResourcesUnavailableError) as e:
            # Before the job ever ran, every placement failing for good (quota, credentials,
            # invalid request: no capacity error among them) means it never will; after a
            # run, or with --retry-until-up, stay patient.
            from skybroker.core.failover import permanent_failure

            perm = None if job.runs or self.p.retry_until_up else permanent_failure(e)
            if perm is not None:
                self._no_resource(job, m, pending, kind, *perm, snapshot, lost)
                return
            self._launch_failed(job, m, pending, kind, str(e), snapshot, lost)
            return
        m.price, m.zone, m.launch_tick = got.price, got.zone, t
        S.update(self.id, model=m.to_json(), pending=None, cluster=got.cluster,
                 cluster_info=got.info, placement=got.placement, cluster_job_id=got.cluster_job_id,
                 runs=job.runs + 1, status=S.RUNNING,
                 event=("jobs.launched", f"{got.cluster}: {'spot' if kind == SPOT else 'on-demand'} "
                        f"{got.placement['cloud']}/{got.placement['region']}/"
                        f"{got.placement.get('zone') or '-'} {got.placement['instance_type']}",
                        {"tick": t, "placement": got.placement}))

    def _needs(self) -> tuple[str, ...]:
        """The markets the job may run on: both for a deadline policy, else the task's."""
        if self.p.policy is not None and self.p.deadline_s is not None:
            return ("spot", "on_demand")
        return ("spot",) if self.p.wants_spot else ("on_demand",)

    def _no_resource(self, job, m, pending, kind, why, fix, snapshot, lost) -> None:
        """No placement of this market can ever launch: remember it. When that holds for
        every market the job may use, end it FAILED_NO_RESOURCE; else decide again without."""
        market = M.KIND_NAMES[kind]
        m.no_resource[market] = [why, fix]
        if snapshot is not None:
            snapshot.no_resource = copy.deepcopy(m.no_resource)
        if all(k in m.no_resource for k in self._needs()):
            S.update(self.id, pending=None, model=m.to_json())
            self._finish(S.get(self.id), S.FAILED_NO_RESOURCE, no_resource_reason(m.no_resource), m)
            return
        S.add_event(self.id, "jobs.no_resource", f"{market.replace('_', '-')} can never launch: "
                    f"{why}; the job goes on without it")
        self._launch_failed(job, m, pending, kind, why, snapshot, lost)

    def _launch_failed(self, job, m, pending, kind, why, snapshot, lost) -> None:
        t = int(pending["tick"])
        if kind == SPOT and snapshot is not None:
            # No spot anywhere right now: decide this tick again knowing it.
            m = copy.deepcopy(snapshot)
            m.avoid = [a for a in m.avoid if t - int(a.get("tick", -99)) <= 3]
            m.avoid.append({"tick": t, "all_spot": True})
            none: bool | list[bool] = False
            if self.market is not None and self.market.multi:
                none = [False] * len(self.market.zones)
            x, cur, restart = M.decide(self.p, m, self.policy, none, lost)
            pend = self._pending(S.get(self.id), m, x, cur, lost, restart, t)
            self._record(S.get(self.id), m, snapshot, t, x, cur, none, lost, restart, True,
                         time.time(), pend)
            S.add_event(self.id, "jobs.launch_failed", f"spot: {why.splitlines()[0]}")
            if pend and pend.get("launch") is not None:
                self._act(S.get(self.id), m, pend, None, lost)
            else:
                S.update(self.id, pending=None)
            return
        m.prev, m.price = NONE, 0.0  # nothing runs this tick; try again at the next
        S.update(self.id, model=m.to_json(), pending=None, status=S.RECOVERING,
                 event=("jobs.launch_failed", f"{'spot' if kind == SPOT else 'on-demand'}: "
                        f"{why.splitlines()[0]}", None))

    def _next(self, m: M.Model) -> float:
        due = self.p.due(m.tick)
        if self.p.poll_s > 0 and not self.market:
            return min(due, time.time() + self.p.poll_s)
        return due

    def _finish(self, job: S.ManagedJob | None, status: str, reason: str,
                m: M.Model | None = None) -> None:
        if job is None:
            return
        fields: dict[str, Any] = {}
        if m is not None:
            fields["model"] = m.to_json()
        # Intent first: a crash while terminating must end the job, never relaunch it.
        S.update(self.id, pending={"finish": status, "reason": reason}, **fields)
        if job.cluster:
            log_dir = self.log_root / str(job.id) if self.log_root is not None else None
            try:
                self.backend.terminate(job.cluster, job.cluster_info, log_dir)
            except Exception as e:  # noqa: BLE001
                S.add_event(self.id, "jobs.error", f"terminating {job.cluster}: {e}")
        S.update(self.id, status=status, ended_at=time.time(), cluster=None, cluster_info=None,
                 pending=None, failure_reason=reason or None,
                 event=("jobs.end", f"{status}{': ' + reason if reason else ''}",
                        {"tick": (m.tick if m else None), "cost": (m.cost if m else None)}),
                 **fields)


def no_resource_reason(no_resource: dict[str, list[str]]) -> str:
    """"no placement can run this task: <market: per-placement reasons>; <what to change>"."""
    parts = [f"{k.replace('_', '-')}: {why}" for k, (why, _fix) in sorted(no_resource.items())]
    fixes = list(dict.fromkeys(fix for _why, fix in no_resource.values() if fix))
    if any(fix != NOTHING_FITS for _why, fix in no_resource.values()):
        fixes.append("or launch with --retry-until-up to keep retrying until it can")
    return f"no placement can run this task: {'; '.join(parts)}. To run it: {'; '.join(fixes)}."
