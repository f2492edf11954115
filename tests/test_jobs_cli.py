"""`sky jobs` end to end on the local cloud: recovery-only jobs, retries on errors, cancel, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from skybroker.cli import cli


@pytest.fixture
def fast_jobs(sky_home: Path):
    """Real-time jobs tick every 0.3 s and poll every 0.2 s; everything started is killed."""
    (sky_home / "config.yaml").write_text("jobs:\n  tick_seconds: 0.3\n  poll_seconds: 0.2\n")
    yield sky_home
    from skybroker.runtime.agent import kill_env

    kill_env("SKYBROKER_HOME", str(sky_home))


def _task(tmp_path: Path, run: str, extra: str = "", file: str = "task.yaml") -> Path:
    p = tmp_path / file
    p.write_text(f"name: t\nresources:\n  cloud: local\n  use_spot: true\n{extra}run: {run}\n")
    return p


def _sky(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_failover_job_runs_to_success_via_cli(fast_jobs, tmp_path):
    from skybroker import jobs
    from skybroker.jobs import state as S

    out = _sky("jobs", "launch", "-y", str(_task(tmp_path, "echo hello-managed")))
    job_id = int(re.search(r"Managed job (\d+) submitted", out).group(1))
    assert "spot: local." in out  # the summary shown before launching
    assert out.count("hello-managed") == 1 and f"Managed job {job_id} SUCCEEDED" in out
    job = jobs.wait(job_id, timeout=30)
    assert job.status == "SUCCEEDED", S.events(job_id)
    assert _sky("jobs", "logs", str(job_id)).count("hello-managed") == 1
    rows = json.loads(_sky("jobs", "queue", "--json"))
    assert rows[0]["status"] == "SUCCEEDED" and rows[0]["policy"] == "failover"
    assert "SUCCEEDED" in _sky("jobs", "queue")
    assert "jobs.decision" in _sky("jobs", "logs", "--controller", str(job_id))


def test_user_errors_retried_then_failed(fast_jobs, tmp_path):
    from skybroker import jobs
    from skybroker.jobs import state as S

    task = _task(tmp_path, "echo attempt >> " + str(tmp_path / "attempts") + "; exit 3",
                 "  job_recovery:\n    max_restarts_on_errors: 2\n")
    job_id = jobs.launch(task)
    job = jobs.wait(job_id, timeout=30)
    assert job.status == "FAILED" and job.error_restarts == 2, S.events(job_id)
    assert (tmp_path / "attempts").read_text().count("attempt") == 3
    from skybroker.state import clusters as cstate

    assert cstate.list_clusters() == []  # its cluster is gone


def test_cancel_terminates_the_cluster(fast_jobs, tmp_path):
    import time

    from skybroker import jobs
    from skybroker.jobs import state as S
    from skybroker.state import clusters as cstate

    job_id = jobs.launch(_task(tmp_path, "sleep 60"), name="sleepy")
    end = time.time() + 20
    while time.time() < end and (S.get(job_id).status != "RUNNING"):
        time.sleep(0.1)
    assert S.get(job_id).status == "RUNNING"
    assert "Cancelling 1 job(s)" in _sky("jobs", "cancel", "-y", "sleepy")
    job = jobs.wait(job_id, timeout=20)
    assert job.status == "CANCELLED"
    assert cstate.list_clusters() == []


def test_policy_validation(fast_jobs, tmp_path):
    from skybroker import jobs
    from skybroker.errors import SkyError

    task = _task(tmp_path, "echo ok")
    with pytest.raises(SkyError, match="needs a deadline and a duration"):
        jobs.launch(task, policy="uniform_progress", start_controller=False)
    with pytest.raises(SkyError, match="Did you mean 'uniform_progress'"):
        jobs.launch(task, policy="uniform_progres", deadline_h=2, duration_h=1,
                    start_controller=False)
    with pytest.raises(SkyError, match="cannot finish|deadline is"):
        jobs.launch(task, deadline_h=1, duration_h=2, start_controller=False)
    # YAML job_recovery is read: a deadline policy with hours
    t2 = _task(tmp_path, "echo ok", "  job_recovery:\n    strategy: greedy\n    deadline: 3h\n"
               "    duration: 2h\n    restart_overhead: 6m\n", file="t2.yaml")
    from skybroker.jobs import state as S

    jid = jobs.launch(t2, start_controller=False)
    p = S.get(jid).params
    assert (p["policy"], p["deadline_s"], p["duration_s"], p["overhead_s"]) == \
        ("greedy", 3 * 3600.0, 2 * 3600.0, 360.0)
    jid = jobs.launch(task, policy="EAGER_NEXT_REGION", start_controller=False)
    assert S.get(jid).params["recovery"] == "eager_next_region"
    assert S.get(jid).params["policy"] is None



def test_one_controller_per_home(fast_jobs):
    import time

    from skybroker.jobs.controller import controller_pid, ensure_running
    from skybroker.runtime.agent import kill_env

    for _ in range(3):
        ensure_running()
    end = time.time() + 10
    while time.time() < end and controller_pid() in (None, -1):
        time.sleep(0.05)
    time.sleep(1.0)  # the losers of the lock race have exited by now
    assert controller_pid() not in (None, -1)
    assert kill_env("SKYBROKER_HOME", str(fast_jobs), 0) == 1  # signal 0: just count


def test_fitted_hazards_reach_the_job_policy(fast_jobs, tmp_path):
    """`--hazards FILE` (a model fitted by `sky replay --fit-hazards`) is stored with the job
    and is the model the controller's policy object plans on."""
    import numpy as np

    from skybroker import jobs
    from skybroker.errors import SkyError
    from skybroker.jobs import state as S
    from skybroker.jobs.runner import JobRunner
    from skybroker.policy.hazard_fit import fit_hazards, save_hazards

    h = fit_hazards([(np.array([1, 1, 1, 0] * 30, dtype=bool), 600.0)])
    model = tmp_path / "zone.json"
    save_hazards(h, model, source="test")
    task = _task(tmp_path, "echo ok")
    with pytest.raises(SkyError, match="does not use one"):
        jobs.launch(task, policy="greedy", deadline_h=3, duration_h=2, hazards=str(model),
                    start_controller=False)
    out = _sky("jobs", "launch", str(task), "--policy", "best", "--deadline", "3h",
               "--duration", "2h", "--hazards", str(model), "-y", "-d")
    jid = int(re.search(r"Managed job (\d+)", out).group(1))
    assert np.allclose(S.get(jid).params["policy_params"]["hazards"], h, atol=1e-6)
    runner = JobRunner(jid, backend=None)
    assert np.allclose(runner.policy.hazard, h, atol=1e-6)
    assert "run-length model from" in out
