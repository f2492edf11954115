"""The examples as a user meets them: every one plans, and every spot one rehearses for real.

* `sky launch --dryrun` plans each example YAML (pipelines with egress between their tasks).
* Each spot example's local twin (examples/rehearse.py: `local` cloud, no GPU, checkpoints in a
  directory of this machine) runs with `sky launch -y`, is stopped part-way by its step budget
  (REHEARSAL_STOP_AFTER, a stand-in preemption), runs again on the same cluster and must resume
  from its checkpoint and end with exactly what an uninterrupted run computes.
* End to end: the k-mer example as a managed job with a deadline on a trace-bound local zone is
  really preempted (its process killed by the spot market's reaper), relaunched, resumes from its
  checkpoint and finishes.
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from skybroker.cli import cli
from tests.conftest import REPO

EXAMPLES = REPO / "examples"
YAMLS = sorted(p.relative_to(REPO).as_posix() for p in EXAMPLES.rglob("*.yaml"))
MINE = [p for p in YAMLS if p not in ("examples/minimal.yaml", "examples/multinode.yaml")]
TRACE = REPO / "traces/spot-traces/availability/1-node/aws-10-26-2022/us-west-2a_k80_1.json"


def _module(rel: str):
    """Import an example script by path (they are scripts, not a package)."""
    path = EXAMPLES / rel
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sky(*args: str, ok: bool = True) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def module_home(tmp_path_factory):
    """One broker home for the module, so the single-node rehearsals share one cluster (each
    launch on it skips provisioning); examples' workdirs are relative to the repository root.
    Everything started under this home is killed at the end."""
    home = tmp_path_factory.mktemp("skyhome-examples")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKYBROKER_HOME", str(home))
        mp.chdir(REPO)
        yield home
    from skybroker.runtime.agent import kill_env

    kill_env("SKYBROKER_HOME", str(home))


@pytest.fixture(autouse=True)
def sky_home(module_home: Path) -> Path:
    """Overrides conftest's per-test home with the module's (still a temporary directory)."""
    return module_home


def _twin(example: str, tmp_path: Path, zone: str = "local-a") -> Path:
    """The example's local twin; local-a is never trace-bound here (local-b is, in the e2e)."""
    rehearse = _module("rehearse.py")
    out = tmp_path / (Path(example).stem + "-rehearsal.yaml")
    out.write_text(rehearse.rehearsal_yaml(example, ckpt_root=str(tmp_path / "ckpt"), zone=zone))
    return out


# ------------------------------------------------------------------------------ planning

def test_examples_are_there_with_headers():
    assert {"examples/vicuna/finetune.yaml", "examples/serve/serve.yaml",
            "examples/mtbench/eval.yaml", "examples/genomics/kmer.yaml",
            "examples/pipeline/train_eval.yaml"} <= set(MINE)
    for rel in MINE:
        head = (REPO / rel).read_text().split("\nname:")[0]
        assert head.startswith("# ") and "sky launch --dryrun" in head, rel
        assert "rehearse.py" in head, rel


@pytest.mark.parametrize("example", YAMLS)
def test_example_plans(example: str):
    out = _sky("launch", "--dryrun", example)
    docs = [d for d in yaml.safe_load_all((REPO / example).read_text()) if d and set(d) != {"name"}]
    assert out.count("Chosen: ") == len(docs), out
    if len(docs) > 1:  # a pipeline: planned as one, with egress between the tasks
        assert re.search(r"Pipeline: compute \$[\d,.]+ \+ egress \$[\d,.]+ = ", out), out
        plan = json.loads(_sky("launch", "--dryrun", "--json", example))
        assert len(plan["tasks"]) == len(docs) and all(t["placements"] for t in plan["tasks"])
        assert plan["egress_cost"] > 0


def test_pipeline_plan_counts_egress_and_beats_planning_alone():
    from skybroker.optimizer import optimize
    from skybroker.optimizer.dag import _input_sources, egress_per_gb, optimize_dag, task_hours
    from skybroker.task import load_tasks

    tasks = load_tasks(str(EXAMPLES / "pipeline/train_eval.yaml"))
    assert [t.name for t in tasks] == ["train", "eval"]
    dag = optimize_dag(tasks)
    here = [(p.offer.cloud, p.offer.region) for p in dag.chosen]
    expect = sum(egress_per_gb(src, here[0]) * gb for src, gb in _input_sources(tasks[0]))
    expect += egress_per_gb(here[0], here[1]) * sum(tasks[0].outputs.values())
    assert dag.egress_cost == pytest.approx(expect) and dag.egress_cost > 0
    # each task planned alone, then paying the egress its placements imply: never cheaper
    alone = [optimize(t).best for t in tasks]
    where = [(p.offer.cloud, p.offer.region) for p in alone]
    naive = sum(p.hourly_cost * task_hours(t) for p, t in zip(alone, tasks))
    naive += sum(egress_per_gb(src, where[0]) * gb for src, gb in _input_sources(tasks[0]))
    naive += egress_per_gb(where[0], where[1]) * sum(tasks[0].outputs.values())
    assert dag.total_cost <= naive + 1e-9


def test_rehearsal_twin_is_local_without_gpus_or_buckets(tmp_path: Path):
    from skybroker.task import load_tasks

    rehearse = _module("rehearse.py")
    out = tmp_path / "twin.yaml"
    assert rehearse.main(["examples/pipeline/train_eval.yaml", "-o", str(out),
                          "--ckpt-dir", str(tmp_path / "c"), "--zone", "local-b"]) == 0
    tasks = load_tasks(str(out))
    assert [t.name for t in tasks] == ["train", "eval"]
    for t in tasks:
        (r,) = t.resources
        assert (r.cloud, r.zone, r.accelerator(), r.use_spot) == ("local", "local-b", None, True)
        assert not t.file_mounts and Path(t.workdir).is_absolute()
        assert t.envs["REHEARSAL"] == "1" and t.envs["CKPT_DIR"] == str(tmp_path / "c" / t.name)
        assert not t.missing_envs()
    assert tasks[0].resources[0].job_recovery["duration"] == 10.0
    assert _sky("launch", "--dryrun", str(out)).count("Chosen: ") == 2


def test_scripts_fall_back_to_rehearsal_without_torch(tmp_path: Path, monkeypatch):
    """An `nvidia-smi` on PATH is not enough: torch (absent here) must import and see CUDA."""
    import os
    import shutil

    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.delenv("REHEARSAL", raising=False)
    assert shutil.which("nvidia-smi")
    for rel in ("vicuna/train.py", "serve/server.py", "mtbench/judge.py"):
        assert _module(rel).has_gpu() is False, rel
    # the GPU path's multi-node wiring, from the variables every node gets
    for k, v in {"SKYPILOT_NUM_NODES": "2", "SKYPILOT_NUM_GPUS_PER_NODE": "8",
                 "SKYPILOT_NODE_RANK": "1", "SKYPILOT_NODE_IPS": "10.0.0.5\n10.0.0.6\n"}.items():
        monkeypatch.setenv(k, v)
    train = _module("vicuna/train.py")
    assert train.torchrun_args() == ["torchrun", "--nnodes=2", "--nproc_per_node=8",
                                     "--node_rank=1", "--master_addr=10.0.0.5",
                                     "--master_port=29500"]
    args = train.fastchat_args("/checkpoints")
    assert args[args.index("--output_dir") + 1] == "/checkpoints"
    assert args[args.index("--fsdp") + 1] == "full_shard auto_wrap"


# ------------------------------------------------------------------------------ rehearsals

def _launch_twice(twin: Path, cluster: str, stop: str, *envs: str) -> tuple[str, str]:
    env = [a for e in envs for a in ("--env", e)]
    first = _sky("launch", "-y", "-c", cluster, *env, "--env", f"REHEARSAL_STOP_AFTER={stop}",
                 str(twin))
    second = _sky("launch", "-y", "-c", cluster, *env, str(twin))
    return first, second


def test_vicuna_rehearsal_two_nodes_resumes(tmp_path: Path):
    twin = _twin("examples/vicuna/finetune.yaml", tmp_path)
    first, second = _launch_twice(twin, "vic", "120", "STEPS=200")
    assert "(worker1, rank=1)" in first and "stopping after 120 steps" in first
    # the multi-node torchrun wiring from SKYPILOT_NODE_RANK / SKYPILOT_NODE_IPS
    assert "--nnodes=2" in first and "--node_rank=1 --master_addr=127.0.0.1" in first
    assert "resumed from checkpoint at step 120" in second
    got = json.loads((tmp_path / "ckpt/vicuna-finetune/result.json").read_text())
    train = _module("vicuna/train.py")
    ref = train.rehearse(str(tmp_path / "ref"), steps=200, log=lambda m: None)
    assert got["finished"] and got["w_sha"] == ref["w_sha"]  # bit-identical to no interruption
    assert got["loss"] < 0.05


def test_genomics_rehearsal_resumes(tmp_path: Path):
    twin = _twin("examples/genomics/kmer.yaml", tmp_path)
    first, second = _launch_twice(twin, "one", "5", "REHEARSAL_MB=1")
    assert "checkpoint at chunk 5" in first and "resumed from checkpoint at chunk 5/10" in second
    got = json.loads((tmp_path / "ckpt/kmer-spectrum/kmer_result.json").read_text())
    kmer = _module("genomics/kmer.py")
    ref = kmer.count(kmer.synthetic_genome(1), 8, 100_000, str(tmp_path / "ref.npz"),
                     log=lambda m: None)
    assert got == ref and got["total"] == 1_000_000 - 8 + 1


def test_mtbench_rehearsal_shard_resumes(tmp_path: Path):
    twin = _twin("examples/mtbench/eval.yaml", tmp_path)
    first, second = _launch_twice(twin, "one", "10", "SHARD=1", "NUM_SHARDS=2")
    assert "stopping after 10 questions" in first
    assert "resumed from checkpoint: 10/40 questions already judged" in second
    ckpt = tmp_path / "ckpt/mtbench-eval"
    lines = (ckpt / "judgments-shard1.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["question_id"] for x in lines) == list(range(40, 80))
    got = json.loads((ckpt / "summary-shard1.json").read_text())
    judge = _module("mtbench/judge.py")
    ref = judge.rehearse(str(tmp_path / "ref"), 1, 2, log=lambda m: None)
    assert got == {k: v for k, v in ref.items() if k != "finished"}
    assert got["mean_score_a"] > got["mean_score_b"]  # the better model wins, as built
    judge.rehearse(str(ckpt), 0, 2, log=lambda m: None)  # the other shard, then one summary
    whole = judge.merge(str(ckpt))
    assert whole["questions"] == 80
    assert whole == judge.summarize([judge.judge_question(q) for q in range(80)])


def test_serve_rehearsal_ready_then_warm_restart(tmp_path: Path):
    twin = _twin("examples/serve/serve.yaml", tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    envs = ["--env", f"PORT={port}", "--env", "SERVE_MAX_COMPLETIONS=1",
            "--env", "READY_TIMEOUT_S=60"]
    first = _sky("launch", "-y", "-c", "one", *envs, str(twin))
    assert "trained the model" in first and f"ready: http://127.0.0.1:{port}/v1" in first
    body, _ = json.JSONDecoder().raw_decode(first[first.index('{"object"'):])
    assert body["model"] == "vicuna-7b-v1.5" and len(body["choices"][0]["text"]) > 0
    second = _sky("launch", "-y", "-c", "one", *envs, str(twin))
    assert "loaded the model from checkpoint" in second and "ready:" in second


def test_pipeline_rehearsal_runs_both_steps(tmp_path: Path):
    twin = _twin("examples/pipeline/train_eval.yaml", tmp_path)
    out = _sky("launch", "-y", "-c", "one", "--env", "STEPS=100", "--env", "NUM_QUESTIONS=8",
               str(twin))
    assert out.index("rehearsal: done:") < out.index("judge: done:")  # train, then eval
    assert (tmp_path / "ckpt/train/result.json").exists()
    assert (tmp_path / "ckpt/eval/summary-shard0.json").exists()


# ------------------------------------------------------------------------------ end to end

def test_kmer_managed_job_survives_preemption_on_trace(tmp_path: Path, sky_home: Path, request):
    """local-b follows a window of an AWS K80 spot trace at 0.5 s per 10-minute tick: spot for
    8 ticks, then none for hours. The job (11.5 ticks of work, 6 min restart overhead, deadline
    14 ticks, uniform_progress) starts on spot, is preempted at tick 8 (the reaper kills its
    process) with 7.4 ticks of work done, goes on-demand at once (the deadline needs it; replay
    takes the same decisions), resumes from its checkpoint (chunk 6 of 10) and finishes. The
    stand-in paces its chunks on the job's clock, catching up a slow start, so the preemption
    lands mid-work however loaded the machine is."""
    from skybroker import jobs
    from skybroker.jobs import state as S

    spt, gap = 0.5, 600  # wall seconds per tick; the trace's tick
    twin = _twin("examples/genomics/kmer.yaml", tmp_path, zone="local-b")
    (sky_home / "config.yaml").write_text(
        f"local:\n  spot_markets:\n    local-b:\n      trace: {TRACE}\n"
        f"      seconds_per_tick: {spt}\n      start_tick: 48\n"
        f"      epoch: {time.time() + 2.0}\n")
    request.addfinalizer(lambda: (sky_home / "config.yaml").unlink())
    # in minutes: hours like 2.1666...h would floor to one tick less than meant
    out = _sky("jobs", "launch", "-y", "-d", str(twin), "--deadline", f"{14 * gap / 60:g}m",
               "--duration", f"{11.5 * gap / 60:g}m", "--restart-overhead", "6m",
               "--env", "REHEARSAL_MB=1", "--env", "CKPT_SECONDS=0.1")
    job_id = int(re.search(r"Managed job (\d+) submitted", out).group(1))
    job = jobs.wait(job_id, timeout=60)
    events = S.events(job_id)
    assert job.status == "SUCCEEDED", (job.status, job.failure_reason, events)
    launched = [e["data"]["placement"]["spot"] for e in events if e["kind"] == "jobs.launched"]
    assert launched == [True, False], [(d["tick"], d["kind"], d["work"]) for d in S.decisions(job_id)]  # spot first, then on-demand after the loss
    assert job.model["preemptions"] >= 1 and any(d["lost"] for d in S.decisions(job_id))
    logs = _sky("jobs", "logs", str(job_id))
    m = re.search(r"resumed from checkpoint at chunk (\d+)/10", logs)
    assert m and 0 < int(m.group(1)) < 10, logs  # mid-work: 6, unless the kill came late
    got = json.loads((tmp_path / "ckpt/kmer-spectrum/kmer_result.json").read_text())
    kmer = _module("genomics/kmer.py")
    ref = kmer.count(kmer.synthetic_genome(1), 8, 100_000, str(tmp_path / "ref.npz"),
                     log=lambda m: None)
    assert got == ref
