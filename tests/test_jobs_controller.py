"""The controller's loop against a fake cloud (no processes): crash redo, preemption latency,
cancel, controller errors, the task's progress reports."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from skybroker.errors import CapacityError
from skybroker.jobs import state as S
from skybroker.jobs.backend import Launched, Observation


class FakeBackend:
    """A cloud double: clusters in a dict; spot capacity and preemptions set by the test."""

    def __init__(self) -> None:
        self.clusters: dict[str, dict] = {}
        self.calls: list[tuple] = []
        self.spot_ok = True
        self.task = "RUNNING"
        self.progress: float | None = None
        self.preempted_at: dict[str, float] = {}
        self.latency: list[float] = []
        self.fail_observe = False
        self.blocked: list[list[tuple]] = []

    def launch(self, job, spot, name, blocked, env):
        self.calls.append(("launch", name, spot))
        self.blocked.append(list(blocked))
        if spot and not self.spot_ok:
            raise CapacityError("no spot (fake)", "zone")
        assert not [c for c in self.clusters.values() if c["job"] == job.id], "two clusters"
        self.clusters[name] = {"job": job.id, "spot": spot, "alive": True}
        pl = {"cloud": "fake", "region": "r", "zone": "z1", "instance_type": "f", "spot": spot,
              "num_nodes": 1, "hourly_cost": 1.0 if spot else 3.0, "price_spot": 1.0, "price_od": 3.0}
        return Launched(name, {"cluster_name": name}, pl, 1, "z1", pl["hourly_cost"])

    def observe(self, job, want_task=True):
        if self.fail_observe:
            raise RuntimeError("fake observe failure")
        c = self.clusters.get(job.cluster)
        if c is None or not c["alive"]:
            return Observation(False, bool(c and c["spot"]), None)
        return Observation(True, False, self.task, self.progress)

    def resubmit(self, job, env):
        return 2

    def terminate(self, name, info, log_dir):
        self.calls.append(("terminate", name))
        self.clusters.pop(name, None)
        t = self.preempted_at.pop(name, None)
        if t is not None:
            self.latency.append(time.time() - t)

    def exists(self, name, job_id):
        return name in self.clusters

    def preempt(self, name: str) -> None:
        self.clusters[name]["alive"] = False
        self.preempted_at[name] = time.time()


@pytest.fixture
def task(sky_home: Path, tmp_path: Path) -> Path:
    (sky_home / "config.yaml").write_text("jobs:\n  tick_seconds: 0.5\n  poll_seconds: 0.1\n")
    p = tmp_path / "task.yaml"
    p.write_text("name: fake\nresources:\n  cloud: local\n  use_spot: true\nrun: echo\n")
    return p


def _launch(task: Path, **kw) -> int:
    from skybroker import jobs

    return jobs.launch(task, start_controller=False, **kw)


def _serve(backend: FakeBackend):
    from skybroker.jobs.controller import Controller

    ctl = Controller(backend=backend, workers=2, scan_s=0.05, idle_exit_s=None)
    th = threading.Thread(target=ctl.serve, daemon=True)
    th.start()
    return ctl


def _until(pred, timeout: float = 10.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def test_pending_action_is_redone_once_after_a_crash(task):
    from skybroker.jobs.runner import JobRunner

    jid = _launch(task)
    be = FakeBackend()
    be.clusters["old"] = {"job": jid, "spot": True, "alive": True}
    be.clusters["fake-1-2"] = {"job": -1, "spot": True, "alive": True}  # half-launched new one
    job = S.get(jid)
    # as committed by a controller killed right after deciding "switch to spot" at tick 3
    S.update(jid, cluster="old", cluster_info={"cluster_name": "old"}, runs=1, status=S.RUNNING,
             model=dict(job.model, tick=4, prev=1), params=dict(job.params, t0=time.time() + 60),
             pending={"tick": 3, "terminate": "old", "launch": 1, "name": "fake-1-2"})
    JobRunner(jid, be).step()
    assert be.calls[:3] == [("terminate", "old"), ("terminate", "fake-1-2"),
                            ("launch", "fake-1-2", True)]
    job = S.get(jid)
    assert job.pending is None and job.cluster == "fake-1-2" and job.runs == 2
    assert list(be.clusters) == ["fake-1-2"]


def test_interrupted_end_is_finished_not_relaunched(task):
    from skybroker.jobs.runner import JobRunner

    jid = _launch(task)
    be = FakeBackend()
    be.clusters["c"] = {"job": jid, "spot": True, "alive": True}
    S.update(jid, cluster="c", cluster_info={"cluster_name": "c"},
             pending={"finish": S.SUCCEEDED, "reason": ""})
    assert JobRunner(jid, be).step() is None
    assert S.get(jid).status == S.SUCCEEDED and be.clusters == {}
    assert not [c for c in be.calls if c[0] == "launch"]


@pytest.mark.parametrize("strategy,block", [
    ("failover", ("fake", "r", "z1", None, True)),  # the preempted zone, spot only
    ("eager_next_region", ("fake", "r", None, None, True)),  # the whole region
])
def test_preemption_to_relaunch_decision_well_under_5s(task, strategy, block):
    be = FakeBackend()
    jid = _launch(task, policy=strategy)
    ctl = _serve(be)
    try:
        for _ in range(3):
            _until(lambda: S.get(jid).cluster is not None and be.exists(S.get(jid).cluster, jid))
            be.preempt(S.get(jid).cluster)
            _until(lambda: len(be.latency) > 0 and not be.preempted_at)
        assert len(be.latency) == 3 and max(be.latency) < 5.0
        assert max(be.latency) < 2.0  # poll 0.1 s + a step, on a loaded machine
        assert S.get(jid).status in (S.RUNNING, S.RECOVERING)
        assert M_preemptions(jid) == 3
        assert be.blocked[0] == [] and all(block in b for b in be.blocked[1:])
        S.update(jid, cancel_requested=True, status=S.CANCELLING)
        _until(lambda: S.get(jid).status == S.CANCELLED)
        assert be.clusters == {}
    finally:
        ctl.shutdown()


def M_preemptions(jid: int) -> int:
    return int(S.get(jid).model["preemptions"])


def test_spot_stockout_re_decides_the_same_tick(task):
    """No spot on any placement: the policy decides the tick again and may go on-demand."""
    be = FakeBackend()
    be.spot_ok = False
    jid = _launch(task, policy="uniform_progress", deadline_h=2 / 3600 * 3, duration_h=2 / 3600)
    ctl = _serve(be)
    try:
        _until(lambda: S.get(jid).cluster is not None, 10)
        ds = S.decisions(jid)
        assert ds[0]["kind"] in (0, 1) and ds[-1]["kind"] == 2  # ... -> on-demand
        assert any(c == ("launch", c[1], True) for c in be.calls)
        assert not S.get(jid).placement["spot"]
    finally:
        ctl.shutdown()


def test_repeated_step_errors_fail_the_job_only(task):
    be = FakeBackend()
    jid = _launch(task, policy="failover")
    ctl = _serve(be)
    try:
        _until(lambda: S.get(jid).cluster is not None)
        be.fail_observe = True
        _until(lambda: S.get(jid).status == S.FAILED_CONTROLLER, 15)
        assert "controller error" in S.get(jid).failure_reason and be.clusters == {}
        be.fail_observe = False
        jid2 = _launch(task, policy="failover")  # the controller still serves others
        _until(lambda: S.get(jid2).cluster is not None)
    finally:
        ctl.shutdown()


def test_a_fresh_report_of_lost_work_is_believed(task):
    from skybroker.jobs.runner import JobRunner

    jid = _launch(task, policy="uniform_progress", deadline_h=4, duration_h=2,
                  restart_overhead_h=0.1)
    be = FakeBackend()
    r = JobRunner(jid, be)
    # fake a job 10 ticks (of 0.5 s) in, on spot, whose task says it has done nothing
    p = r.p
    S.update(jid, status=S.RUNNING)
    from skybroker.jobs import model as M

    m = M.Model.start(p)
    m.tick, m.elapsed, m.work, m.left, m.prev, m.price = 10, 9 * p.gap_s, 0.2, 7199.8, 1, 1.0
    S.update(jid, model=m.to_json())
    be.clusters["c"] = {"job": jid, "spot": True, "alive": True}
    S.update(jid, cluster="c", cluster_info={"cluster_name": "c"})
    be.progress = 0.5  # the tick's 0.5 s are credited: 0.7 s vs 0.5 s reported, within a tick
    p.t0 = time.time() - 10 * p.wall_per_tick - 0.01
    r.step()
    d = S.decisions(jid)[-1]
    assert d["work"] == pytest.approx(0.7) and d["work_used"] is None
    m = M.Model.from_json(S.get(jid).model)
    m.work, m.left = 3000.0, 4200.0
    S.update(jid, model=m.to_json())
    p.t0 = time.time() - m.tick * p.wall_per_tick - 0.01
    be.progress = 0.0
    r.step()
    assert S.decisions(jid)[-1]["work_used"] == 0.0  # a checkpoint far behind the model


class Crash(BaseException):
    """A controller killed at this exact point (escapes the step's error handling)."""


class CrashingBackend(FakeBackend):
    """Crashes before or after each cloud call at random; flaps spot; records violations."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        import random

        self.rng = random.Random(seed)
        self.violations: list[str] = []

    def _maybe_crash(self) -> None:
        if self.rng.random() < 0.15:
            raise Crash()

    def launch(self, job, spot, name, blocked, env):
        self._maybe_crash()
        live = [n for n, c in self.clusters.items() if c["job"] == job.id]
        if live:
            self.violations.append(f"launch {name} while {live} exist")
        if spot and self.rng.random() < 0.3:
            raise CapacityError("no spot (fake)", "zone")
        self.clusters[name] = {"job": job.id, "spot": spot, "alive": True}
        self._maybe_crash()
        pl = {"cloud": "fake", "region": "r", "zone": "z1", "instance_type": "f", "spot": spot,
              "num_nodes": 1, "hourly_cost": 1.0, "price_spot": 1.0, "price_od": 3.0}
        return Launched(name, {"cluster_name": name}, pl, 1, "z1", 1.0)

    def observe(self, job, want_task=True):
        c = self.clusters.get(job.cluster)
        if c is not None and c["spot"] and c["alive"] and self.rng.random() < 0.2:
            c["alive"] = False  # preempted
        return super().observe(job, want_task)

    def terminate(self, name, info, log_dir):
        self._maybe_crash()
        self.clusters.pop(name, None)
        self._maybe_crash()


@pytest.mark.parametrize("seed", [1, 2])
def test_crashes_anywhere_never_two_clusters_never_lost(sky_home, tmp_path, seed):
    """Kill the controller (here: abandon the runner) before/after any cloud call; a fresh
    runner resumes from the DB. The job never holds two clusters and still finishes."""
    from skybroker.jobs.runner import JobRunner

    (sky_home / "config.yaml").write_text("jobs:\n  tick_seconds: 0.01\n  poll_seconds: 0\n")
    p = tmp_path / "t.yaml"
    p.write_text("name: c\nresources:\n  cloud: local\nrun: echo\n")
    jid = _launch(p, policy="uniform_progress", deadline_h=4 / 3600, duration_h=1 / 3600,
                  restart_overhead_h=0.02 / 3600)
    be = CrashingBackend(seed)
    crashes = 0
    runner = JobRunner(jid, be)
    end = time.time() + 20
    while time.time() < end and not S.get(jid).terminal:
        try:
            nxt = runner.step()
        except Crash:
            crashes += 1
            runner = JobRunner(jid, be)  # a new controller process
            continue
        if S.get(jid).model["left"] <= 1e-3 and S.get(jid).cluster:
            be.task = "SUCCEEDED"  # the task has done its second of work
        if nxt is not None:
            time.sleep(max(0.0, min(nxt - time.time(), 0.01)))
    job = S.get(jid)
    assert job.status == S.SUCCEEDED, (job.status, {k: job.model[k] for k in ("work", "left", "prev", "rem", "tick")}, job.pending,
                                       job.cluster, be.clusters, S.events(jid)[-6:])
    assert crashes >= 3 and not be.violations, be.violations
    assert be.clusters == {}  # nothing leaked


def test_a_foreign_cluster_of_the_same_name_is_never_touched(sky_home):
    from skybroker.errors import SkyError
    from skybroker.jobs.backend import RealBackend
    from skybroker.state import clusters as cstate

    cstate.upsert("train-7-1", status=cstate.UP, cloud="local", metadata={"task": "mine"})
    with pytest.raises(SkyError, match="not managed job 7"):
        RealBackend().exists("train-7-1", 7)
    cstate.upsert("train-7-2", status=cstate.INIT, cloud="local", metadata={"managed_job": 7})
    assert RealBackend().exists("train-7-2", 7) and not RealBackend().exists("train-7-3", 7)
