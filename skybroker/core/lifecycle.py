"""Cluster lifecycle: status (with reconciliation), stop, start, down, autostop, cost report."""

from __future__ import annotations

import contextlib
import os
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


def _get(name: str) -> cstate.ClusterRecord:
    rec = cstate.get(name)
    if rec is None:
        raise ClusterNotFoundError(f"Cluster {name!r} does not exist.",
                                   hint="`sky status` lists the clusters.")
    return rec


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def _provisioner(rec: cstate.ClusterRecord):
    from skybroker.clouds.registry import get_provisioner

    return get_provisioner(rec.cloud or "local")


def _empty_info(rec: cstate.ClusterRecord):
    from skybroker.clouds.base import ClusterInfo

    return ClusterInfo(rec.name, rec.cloud or "local", rec.region or "", rec.zone,
                       rec.instance_type or "", rec.spot)


def _gone(rec: cstate.ClusterRecord, why: str) -> None:
    cstate.usage_end(rec.name, why)
    jstate.fail_unfinished(rec.name)
    cstate.remove(rec.name)
    events.add("cluster.gone", why, cluster=rec.name)


def refresh(name: str) -> cstate.ClusterRecord | None:
    """Reconcile one cluster's record with its provisioner; None when it no longer exists."""
    from skybroker.clouds.base import PREEMPTED, RUNNING, STOPPED, TERMINATED

    rec = _get(name)
    launching = rec.status == cstate.INIT and _pid_alive(rec.metadata.get("launch_pid")) \
        and rec.metadata.get("launch_pid") != os.getpid()
    if launching:
        return rec  # another CLI is launching it right now
    prov = _provisioner(rec)
    info = rec.cluster_info()
    if info is None:
        # The launching CLI died before the cloud answered: clean up by tags, forget the row.
        with contextlib.suppress(Exception):
            prov.terminate(_empty_info(rec))
        _gone(rec, "launch interrupted before the cluster came up; leftovers terminated")
        return None
    try:
        states = prov.query(info)
    except SkyError as e:
        cstate.upsert(name, status=cstate.INIT, last_error=str(e))
        return cstate.get(name)
    vals = set(states.values()) or {TERMINATED}
    if vals == {TERMINATED}:
        with contextlib.suppress(Exception):  # autostop --down leaves directories/claims behind
            prov.terminate(info)
        _gone(rec, "terminated (autostop --down, or outside skybroker)")
        return None
    if vals <= {STOPPED, TERMINATED}:
        if rec.status != cstate.STOPPED:
            with contextlib.suppress(Exception):  # make sure: nothing of it may keep running
                prov.stop(info)
            cstate.usage_end(name, "autostop" if rec.status == cstate.UP else "stop")
            jstate.fail_unfinished(name)
            events.add("cluster.stopped", "found stopped (autostop)", cluster=name)
        cstate.upsert(name, status=cstate.STOPPED, last_error=None)
    elif vals == {RUNNING}:
        if rec.status != cstate.UP:
            cstate.upsert(name, status=cstate.UP, last_error=None)
            cstate.usage_start(cstate.get(name))
        else:
            cstate.upsert(name, status=cstate.UP, last_error=None)
    else:
        bad = sorted(f"{n}={s}" for n, s in states.items() if s != RUNNING)
        why = ("spot node(s) preempted: " if PREEMPTED in vals else "node(s) not running: ") + ", ".join(bad)
        cstate.upsert(name, status=cstate.INIT, last_error=why)
        events.add("cluster.abnormal", why, cluster=name)
    return cstate.get(name)


def status(names: list[str] | None = None, *, refresh_all: bool = False) -> list[cstate.ClusterRecord]:
    """Cluster records; refreshed from the provider with refresh_all (local ones always)."""
    recs = cstate.list_clusters()
    if names:
        known = {r.name for r in recs}
        missing = [n for n in names if n not in known]
        if missing:
            raise ClusterNotFoundError(f"Cluster {missing[0]!r} does not exist.")
        recs = [r for r in recs if r.name in names]
    out = []
    for rec in recs:
        if refresh_all or rec.cloud == "local" or (rec.status == cstate.INIT and rec.info is None):
            new = refresh(rec.name)
            if new is not None:
                out.append(new)
        else:
            out.append(rec)
    return out


def stop(name: str, log: Callable[[str], None] = _err) -> None:
    rec = _get(name)
    info = rec.cluster_info()
    if info is None:
        raise SkyError(f"Cluster {name} was never fully launched; use `sky down {name}`.")
    _provisioner(rec).stop(info)
    cstate.upsert(name, status=cstate.STOPPED)
    cstate.usage_end(name, "stop")
    jstate.fail_unfinished(name)  # as the head's agent will say: their driver stopped
    events.add("cluster.stop", "stopped by user", cluster=name)
    log(f"Cluster {name} stopped.")


def start(name: str, log: Callable[[str], None] = _err) -> None:
    from skybroker.runtime import cluster as rt

    rec = _get(name)
    info = rec.cluster_info()
    if info is None:
        raise SkyError(f"Cluster {name} was never fully launched; `sky launch -c {name}` it again.")
    info = _provisioner(rec).start(info)
    cstate.upsert(name, status=cstate.UP, info=info.to_json())
    cstate.usage_start(cstate.get(name))
    if rec.autostop_minutes is not None and rec.autostop_minutes >= 0:
        rt.set_autostop(info, rec.autostop_minutes, rec.autostop_down)
    events.add("cluster.start", "started by user", cluster=name)
    log(f"Cluster {name} started.")


def down(name: str, log: Callable[[str], None] = _err) -> None:
    """Terminate every node (the provisioner verifies none is left), then forget the cluster."""
    rec = _get(name)
    info = rec.cluster_info() or _empty_info(rec)
    _provisioner(rec).terminate(info)
    _gone(rec, "terminated by user")
    log(f"Cluster {name} terminated.")


def autostop(name: str, minutes: int, down: bool = False) -> None:
    """Stop (or down) the cluster after `minutes` idle; enforced by the head's agent. -1 cancels."""
    from skybroker.runtime import cluster as rt

    rec = _get(name)
    if rec.status == cstate.UP and rec.info:
        rt.set_autostop(rec.cluster_info(), minutes, down)
    elif rec.status != cstate.STOPPED:
        raise SkyError(f"Cluster {name} is {rec.status}; autostop needs it UP (or STOPPED).")
    cstate.upsert(name, autostop_minutes=minutes if minutes >= 0 else None, autostop_down=down)
    events.add("cluster.autostop", f"autostop {minutes} min{' (down)' if down else ''}", cluster=name)


def cost_report(now: float | None = None) -> list[dict[str, Any]]:
    """Per cluster (alive or gone): billed hours and cost, from the recorded UP intervals."""
    now = now or time.time()
    alive = {r.name: r for r in cstate.list_clusters()}
    out: dict[str, dict[str, Any]] = {}
    for u in cstate.usage():
        row = out.setdefault(u["cluster"], {
            "cluster": u["cluster"], "cloud": u["cloud"], "region": u["region"],
            "instance_type": u["instance_type"], "spot": bool(u["spot"]), "num_nodes": u["num_nodes"],
            "hourly_price": u["hourly_price"], "hours": 0.0, "cost": 0.0,
            "status": alive[u["cluster"]].status if u["cluster"] in alive else "TERMINATED",
            "first_launched": u["started_at"]})
        hours = max(0.0, ((u["ended_at"] or now) - u["started_at"]) / 3600)
        row["hours"] += hours
        row["cost"] += hours * (u["hourly_price"] or 0.0)
        row["hourly_price"] = u["hourly_price"]
    return sorted(out.values(), key=lambda r: r["first_launched"])
