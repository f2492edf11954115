"""A managed job no placement can ever run ends FAILED_NO_RESOURCE on its first launch, on the
real local cloud: its quota (`local.quota`) refuses launches with a real QuotaError, and a
trace-bound spot zone refuses them with a real CapacityError (which must stay a wait)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from skybroker.cli import cli

FAST = "jobs:\n  tick_seconds: 0.3\n  poll_seconds: 0.2\n"


@pytest.fixture
def home(sky_home: Path):
    """Real-time jobs tick every 0.3 s; every process started under this home is killed."""
    (sky_home / "config.yaml").write_text(FAST)
    yield sky_home
    from skybroker.runtime.agent import kill_env

    kill_env("SKYBROKER_HOME", str(sky_home))


def _config(home: Path, quota: str = "") -> None:
    (home / "config.yaml").write_text(FAST + (f"local:\n  quota: {quota}\n" if quota else ""))


def _task(tmp_path: Path, spot: bool = True, run: str = "echo ran-it", extra: str = "") -> Path:
    p = tmp_path / "task.yaml"
    p.write_text(f"name: t\nresources:\n  cloud: local\n  use_spot: {str(spot).lower()}\n{extra}"
                 f"run: {run}\n")
    return p


def _sky(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def _until(pred, timeout: float = 20.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def _kinds(job_id: int) -> list[str]:
    from skybroker.jobs import state as S

    return [e["kind"] for e in S.events(job_id, limit=10000)]


def test_quota_on_every_placement_ends_the_job_at_its_first_launch(home, tmp_path):
    from skybroker import jobs
    from skybroker.jobs import state as S
    from skybroker.state import clusters as cstate

    _config(home, "{vcpus: 0, spot_vcpus: 0}")
    out = _sky("jobs", "launch", "-y", "-d", str(_task(tmp_path)))
    job_id = int(re.search(r"Managed job (\d+) submitted", out).group(1))
    job = jobs.wait(job_id, timeout=20)
    assert job.status == "FAILED_NO_RESOURCE", S.events(job_id)
    reason = job.failure_reason
    assert reason.startswith("no placement can run this task: spot: local/local")
    assert "QUOTA local spot vCPU quota is 0" in reason and "local.quota.spot_vcpus" in reason
    assert "quota increase" in reason and "--retry-until-up" in reason
    # ended by the first launch: one decision, no launch retried, nothing left running
    assert job.runs == 0 and len(S.decisions(job_id)) == 1
    assert "jobs.launch_failed" not in _kinds(job_id) and cstate.list_clusters() == []
    queue = _sky("jobs", "queue")
    assert f"Job {job_id} FAILED_NO_RESOURCE: no placement can run this task" in queue
    assert json.loads(_sky("jobs", "queue", "--json"))[0]["failure_reason"] == reason
    assert f"Managed job {job_id} FAILED_NO_RESOURCE: {reason}" in _sky("jobs", "logs", str(job_id))


def test_a_deadline_job_without_spot_runs_on_demand(home, tmp_path):
    """Spot refused for good is one market gone: the policy decides again without it."""
    from skybroker import jobs
    from skybroker.jobs import state as S

    _config(home, "{spot_vcpus: 0}")
    tick_h = 0.3 / 3600
    job_id = jobs.launch(_task(tmp_path), policy="uniform_progress", deadline_h=20 * tick_h,
                         duration_h=2 * tick_h)
    job = jobs.wait(job_id, timeout=30)
    assert job.status == "SUCCEEDED", S.events(job_id)
    assert job.placement["spot"] is False and job.runs == 1
    assert "jobs.no_resource" in _kinds(job_id)
    assert all(not d["avail"] for d in S.decisions(job_id)[1:])  # the policy sees no spot since


def test_a_deadline_job_with_neither_market_fails_naming_both(home, tmp_path):
    from skybroker import jobs
    from skybroker.jobs import state as S

    _config(home, "{vcpus: 0, spot_vcpus: 0}")
    tick_h = 0.3 / 3600
    job_id = jobs.launch(_task(tmp_path), policy="uniform_progress", deadline_h=20 * tick_h,
                         duration_h=2 * tick_h)
    job = jobs.wait(job_id, timeout=30)
    assert job.status == "FAILED_NO_RESOURCE", S.events(job_id)
    assert "on-demand: local/local" in job.failure_reason
    assert "; spot: local/local" in job.failure_reason and job.runs == 0


def test_retry_until_up_waits_for_the_quota(home, tmp_path):
    from skybroker import jobs
    from skybroker.jobs import state as S

    _config(home, "{vcpus: 0}")
    out = _sky("jobs", "launch", "-y", "-d", "--retry-until-up", str(_task(tmp_path, spot=False)))
    job_id = int(re.search(r"Managed job (\d+) submitted", out).group(1))
    _until(lambda: _kinds(job_id).count("jobs.launch_failed") >= 3)
    assert S.get(job_id).status == "RECOVERING"
    _config(home)  # the quota was raised
    job = jobs.wait(job_id, timeout=20)
    assert job.status == "SUCCEEDED", S.events(job_id)


def test_a_job_that_already_ran_stays_patient(home, tmp_path):
    """After a run, the same permanent error is a wait (recovery), as before."""
    import shutil

    from skybroker import jobs
    from skybroker.clouds.local.provisioner import nodes_dir
    from skybroker.jobs import state as S

    marker = tmp_path / "second"
    run = f"if [ -e {marker} ]; then echo again; else touch {marker}; sleep 60; fi"
    job_id = jobs.launch(_task(tmp_path, spot=False, run=f"'{run}'"))
    _until(lambda: S.get(job_id).status == "RUNNING" and marker.exists())
    _config(home, "{vcpus: 0}")
    shutil.rmtree(nodes_dir() / S.get(job_id).cluster / "0")  # the node is lost
    _until(lambda: _kinds(job_id).count("jobs.launch_failed") >= 3)
    assert S.get(job_id).status == "RECOVERING"
    _config(home)
    job = jobs.wait(job_id, timeout=20)
    assert job.status == "SUCCEEDED" and job.runs == 2, S.events(job_id)


def test_capacity_errors_are_not_permanent(home):
    """The classification, on the real provisioner: a trace-bound zone out of spot is
    capacity (come back later); the quota is permanent."""
    from skybroker.core.failover import permanent_failure, provision_with_failover
    from skybroker.errors import ResourcesUnavailableError
    from skybroker.jobs.backend import _plan, _spec_maker
    from skybroker.task import Task

    (home / "trace.json").write_text(json.dumps({"metadata": {"gap_seconds": 600},
                                                 "data": [0] * 100}))
    market = ("  spot_markets:\n    local-b:\n      trace: trace.json\n      seconds_per_tick: 1\n"
              f"      epoch: {time.time()}\n")
    task = Task.from_yaml_config({"name": "t", "run": "true", "resources": {
        "cloud": "local", "zone": "local-b", "use_spot": True}})
    for quota, permanent in (("{}", False), ("{spot_vcpus: 1}", True)):
        (home / "config.yaml").write_text(f"local:\n  quota: {quota}\n{market}")
        with pytest.raises(ResourcesUnavailableError) as e:
            provision_with_failover(_plan(task, []), _spec_maker(task, "c"))
        assert e.value.attempts and (permanent_failure(e.value) is not None) == permanent
        assert e.value.attempts[0].outcome == ("QUOTA" if permanent else "CAPACITY")


def test_no_feasible_placement_is_refused_at_submission(home, tmp_path):
    from skybroker import jobs
    from skybroker.errors import SkyError
    from skybroker.jobs import state as S

    task = _task(tmp_path, extra="  accelerators: A100:8\n")
    with pytest.raises(SkyError, match="no placement can run this managed job"):
        jobs.launch(task, start_controller=False)
    assert S.list_jobs() == []
