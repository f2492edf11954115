"""The local cloud end to end: real processes, real agent, real state DB (through the API)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from skybroker import api
from skybroker.errors import SkyError
from skybroker.state import clusters as cstate


@pytest.fixture(autouse=True)
def _down_all():
    yield
    for rec in cstate.list_clusters():
        api.down(rec.name)


def task_file(tmp_path: Path, body: str, name: str = "task.yaml") -> str:
    p = tmp_path / name
    p.write_text("resources:\n  cloud: local\n" + body)
    return str(p)


def collect():
    lines: list[str] = []
    return lines, lines.append


def tagged_pids(cluster: str) -> list[int]:
    """Processes still carrying a node tag of this cluster."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(e.startswith(b"SKYBROKER_NODE_TAG=") and f"/{cluster}/".encode() in e for e in env):
            out.append(int(pid))
    return out


def test_launch_runs_job_with_skypilot_env(tmp_path):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "data.txt").write_text("payload\n")
    (wd / "skip.log").write_text("no\n")
    (wd / ".gitignore").write_text("*.log\n")
    f = task_file(tmp_path, f"""workdir: {wd}
envs: {{GREETING: hi}}
secrets: {{TOKEN: s3cret}}
run: |
  echo "$GREETING rank=$SKYPILOT_NODE_RANK n=$SKYPILOT_NUM_NODES ips=$SKYPILOT_NODE_IPS"
  cat data.txt; ls
  echo "task=$SKYPILOT_TASK_ID token=$TOKEN"
  python3 -c "import json,os; print(json.loads(os.environ['SKYPILOT_CLUSTER_INFO'])['cloud'])"
""")
    lines, on_line = collect()
    r = api.launch(f, "c1", on_line=on_line)
    assert (r.returncode, r.status) == (0, "SUCCEEDED")
    assert "hi rank=0 n=1 ips=127.0.0.1" in lines
    assert "payload" in lines and "skip.log" not in lines and "data.txt" in lines
    assert any(x.startswith("task=sky-") and x.endswith("_c1_1 token=s3cret") for x in lines)
    assert "local" in lines
    rec = cstate.get("c1")
    assert rec.status == "UP" and rec.cloud == "local" and rec.hourly_price > 0
    [job] = api.queue("c1")
    assert job.status == "SUCCEEDED" and job.returncode == 0


def test_multinode_prefixes_and_peers(tmp_path):
    f = task_file(tmp_path, """num_nodes: 3
run: |
  echo "me=$SKYPILOT_NODE_RANK peers=$(echo "$SKYPILOT_NODE_IPS" | tr '\\n' ',')"
  echo home=$HOME
""")
    lines, on_line = collect()
    r = api.launch(f, "mn", on_line=on_line)
    assert r.returncode == 0
    for rank, role in ((0, "head"), (1, "worker1"), (2, "worker2")):
        assert f"({role}, rank={rank}) me={rank} peers=127.0.0.1,127.0.0.2,127.0.0.3," in lines
        assert any(x.startswith(f"({role}, rank={rank}) home=") and x.endswith(f"/mn/{rank}") for x in lines)


def test_reuse_skips_provisioning_and_unchanged_setup(tmp_path):
    f = task_file(tmp_path, "setup: echo SETUP-RAN\nrun: echo RUN-RAN\n")
    lines, on_line = collect()
    api.launch(f, "re", on_line=on_line)
    assert lines == ["SETUP-RAN", "RUN-RAN"]
    launched = cstate.get("re").launched_at
    lines.clear()
    r = api.launch(f, "re", on_line=on_line)
    assert r.reused and lines == ["RUN-RAN"] and cstate.get("re").launched_at == launched
    lines.clear()
    f2 = task_file(tmp_path, "setup: echo SETUP-CHANGED\nrun: echo RUN-RAN\n", "t2.yaml")
    api.launch(f2, "re", on_line=on_line)
    assert lines == ["SETUP-CHANGED", "RUN-RAN"]


def test_setup_failure_is_failed_setup_with_log(tmp_path):
    f = task_file(tmp_path, "setup: |\n  echo installing\n  exit 7\nrun: echo never\n")
    lines, on_line = collect()
    r = api.launch(f, "fs", on_line=on_line)
    assert r.status == "FAILED_SETUP" and r.returncode == 7
    assert "installing" in lines and "never" not in lines
    log, on_log = collect()
    api.logs("fs", 1, on_line=on_log)
    assert "installing" in log


def test_run_failure_fails_job_and_any_node_fails_all(tmp_path):
    f = task_file(tmp_path, """num_nodes: 2
run: |
  if [ "$SKYPILOT_NODE_RANK" = 1 ]; then exit 3; fi
  sleep 20
""")
    t0 = time.time()
    r = api.launch(f, "ff", on_line=lambda s: None)
    assert r.status == "FAILED" and r.returncode == 3
    assert time.time() - t0 < 10  # the healthy node was stopped, not waited for
    assert api.queue("ff")[-1].status == "FAILED"


def test_detach_then_logs_follow_and_exit_code(tmp_path):
    f = task_file(tmp_path, "run: |\n  echo one\n  sleep 0.5\n  echo two\n  exit 4\n")
    r = api.launch(f, "dl", detach_run=True)
    assert r.status is None and r.job_id == 1
    lines, on_line = collect()
    out = api.logs("dl", on_line=on_line)
    assert lines == ["one", "two", "ERROR: run failed on node rank 0 with exit code 4"]
    assert out.status == "FAILED" and out.returncode == 4
    # A streamed job's log is also kept here: readable while the cluster is stopped.
    api.launch(task_file(tmp_path, "run: echo streamed\n", "t2.yaml"), "dl", on_line=lambda s: None)
    api.stop("dl")
    kept, on_kept = collect()
    assert api.logs("dl", 2, on_line=on_kept).status == "SUCCEEDED" and kept == ["streamed"]


def test_job_survives_client_and_cancel_kills_everywhere(tmp_path):
    marker = tmp_path / "alive"
    f = task_file(tmp_path, f"num_nodes: 2\nrun: |\n  sleep 30 &\n  while true; do touch {marker}.$SKYPILOT_NODE_RANK; sleep 0.05; done\n")
    api.launch(f, "cx", detach_run=True)
    deadline = time.time() + 10
    while not (Path(f"{marker}.0").exists() and Path(f"{marker}.1").exists()) and time.time() < deadline:
        time.sleep(0.05)
    assert api.queue("cx")[-1].status == "RUNNING"
    assert api.cancel("cx") == [1]
    time.sleep(0.3)
    for rank in (0, 1):
        p = Path(f"{marker}.{rank}")
        before = p.stat().st_mtime
        time.sleep(0.3)
        assert p.stat().st_mtime == before  # nothing touches it any more
    assert api.queue("cx")[-1].status == "CANCELLED"
    # only the job died: the cluster still takes jobs
    lines, on_line = collect()
    assert api.exec("cx", "echo after-cancel", on_line=on_line).status == "SUCCEEDED"
    assert lines == ["after-cancel"]  # a command runs on one node (num_nodes defaults to 1)


def test_exec_queue_order_and_sharing(tmp_path):
    api.launch(task_file(tmp_path, "run: echo first\n"), "q", on_line=lambda s: None)  # 4 vCPUs
    log = tmp_path / "order"
    whole = tmp_path / "whole.yaml"  # each asks for the whole node: they queue, in order
    for name, cmd in (("a", "sleep 0.3; echo a"), ("b", "echo b"), ("c", "echo c")):
        whole.write_text(f"resources: {{cloud: local, cpus: 4}}\nrun: {cmd} >> {log}\n")
        out = api.exec("q", str(whole), detach_run=name != "c", on_line=lambda s: None)
    assert out.status == "SUCCEEDED"
    assert log.read_text().split() == ["a", "b", "c"]
    # Small jobs (0.5 CPU by default) share the node: the first waits for the second.
    flag = tmp_path / "flag"
    api.exec("q", f"for i in $(seq 200); do [ -e {flag} ] && exit 0; sleep 0.02; done; exit 1",
             detach_run=True)
    assert api.exec("q", f"touch {flag}", on_line=lambda s: None).status == "SUCCEEDED"
    assert api.logs("q", 5, on_line=lambda s: None).status == "SUCCEEDED"
    assert [j.job_id for j in api.queue("q")] == [1, 2, 3, 4, 5, 6]


def test_stop_start_down_leave_nothing_running(tmp_path):
    f = task_file(tmp_path, "num_nodes: 2\nrun: sleep 60\n")
    api.launch(f, "life", detach_run=True)
    deadline = time.time() + 5
    while len(tagged_pids("life")) < 3 and time.time() < deadline:  # daemon + 2 job shells
        time.sleep(0.05)
    assert tagged_pids("life")
    api.stop("life")
    assert tagged_pids("life") == []
    with pytest.raises(SkyError, match="No log of job 1"):  # never streamed here: no local copy
        api.logs("life", 1, on_line=lambda s: None)
    assert cstate.get("life").status == "STOPPED"
    assert api.status(["life"])[0].status == "STOPPED"
    api.start("life")
    assert api.exec("life", "echo back", on_line=lambda s: None).status == "SUCCEEDED"
    api.launch(f, "life", detach_run=True)
    api.down("life")
    assert tagged_pids("life") == [] and cstate.get("life") is None
    from skybroker.clouds.local.provisioner import nodes_dir

    assert not (nodes_dir() / "life").exists()
    report = {r["cluster"]: r for r in api.cost_report()}
    assert report["life"]["status"] == "TERMINATED" and report["life"]["hours"] > 0


def test_autostop_runs_on_the_cluster(tmp_path):
    f = task_file(tmp_path, "run: echo hi\n")
    api.launch(f, "as", on_line=lambda s: None)
    api.autostop("as", 0)
    deadline = time.time() + 10
    while time.time() < deadline:
        recs = api.status(["as"])
        if recs[0].status == "STOPPED":
            break
        time.sleep(0.1)
    assert api.status(["as"])[0].status == "STOPPED"
    assert tagged_pids("as") == []
    api.autostop("as", -1)  # off while stopped, else start() re-arms the 0-minute stop
    api.start("as")
    assert api.status(["as"])[0].status == "UP"
    api.autostop("as", 0, down=True)
    deadline = time.time() + 10
    while cstate.get("as") is not None and time.time() < deadline:
        api.status()
        time.sleep(0.1)
    assert cstate.get("as") is None


def test_missing_workdir_is_one_clear_error(tmp_path):
    f = task_file(tmp_path, f"workdir: {tmp_path}/nope\nrun: echo x\n")
    with pytest.raises(SkyError, match="workdir .*nope.* does not exist"):
        api.launch(f, "mw")
    assert cstate.get("mw") is None


def test_status_reconciles_a_launch_that_crashed(tmp_path):
    # A CLI that died right after recording INIT (before the cloud answered)...
    cstate.upsert("crashed", status="INIT", cloud="local", region="local", zone="local-a",
                  instance_type="local.small", metadata={"launch_pid": 2 ** 22 + 12345})
    # ...and one that died after provisioning, before the runtime came up.
    from skybroker.clouds.base import ClusterSpec
    from skybroker.clouds.local.provisioner import LocalProvisioner

    info = LocalProvisioner().launch(ClusterSpec("half", "local", "local", "local-a", "local.small", False))
    cstate.upsert("half", status="INIT", cloud="local", region="local", zone="local-a",
                  instance_type="local.small", info=info.to_json(),
                  metadata={"launch_pid": 2 ** 22 + 12346})
    recs = {r.name: r for r in api.status()}
    assert "crashed" not in recs and recs["half"].status == "UP"
    lines, on_line = collect()
    r = api.launch(task_file(tmp_path, "run: echo resumed\n"), "half", on_line=on_line)
    assert r.reused and lines == ["resumed"]


def test_concurrent_launches_keep_state_consistent(tmp_path):
    import concurrent.futures as cf

    f = task_file(tmp_path, "run: echo ok\n")
    with cf.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda i: api.launch(f, f"par{i}", on_line=lambda s: None), range(4)))
    assert all(r.status == "SUCCEEDED" for r in results)
    assert sorted(r.name for r in cstate.list_clusters()) == [f"par{i}" for i in range(4)]
    events = json.dumps([e["kind"] for e in __import__("skybroker.state.events", fromlist=["x"]).list_events()])
    assert events.count("cluster.up") == 4


def test_local_price_as_a_real_instance(tmp_path, sky_home):
    (sky_home / "config.yaml").write_text("local:\n  price_as:\n    default: aws/m6i.large/us-east-1\n")
    api.launch(task_file(tmp_path, "num_nodes: 2\nrun: echo x\n"), "priced", on_line=lambda s: None)
    from skybroker.core.launch import local_price_as

    unit = local_price_as("local.small", False)
    assert 0.05 < unit < 0.5
    assert cstate.get("priced").hourly_price == pytest.approx(2 * unit)


def test_reuse_refuses_another_cloud_or_more_nodes(tmp_path):
    api.launch(task_file(tmp_path, "run: echo x\n"), "one", on_line=lambda s: None)
    with pytest.raises(SkyError, match="has 1 node"):
        api.launch(task_file(tmp_path, "num_nodes: 2\nrun: echo x\n", "t2.yaml"), "one")
    other = tmp_path / "ssh.yaml"
    other.write_text("resources: {cloud: ssh}\nrun: echo x\n")
    with pytest.raises(SkyError, match="runs on local; the task asks for ssh"):
        api.launch(str(other), "one")
