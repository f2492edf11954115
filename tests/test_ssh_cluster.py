"""The ssh cloud against real sshd processes on loopback (see tests/sshd.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from skybroker import api
from skybroker.errors import ResourcesUnavailableError, SkyError
from skybroker.state import clusters as cstate

sshd = pytest.importorskip("sshd")  # tests/ is on sys.path under pytest's rootdir conftest
if not sshd.have_sshd():
    pytest.skip("openssh-server/ssh-keygen not installed (.ci/run installs them)", allow_module_level=True)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    c = sshd.Cluster.start(tmp_path_factory.mktemp("sshd"), 3)
    yield c
    c.stop()


@pytest.fixture()
def pool(hosts, sky_home):
    """A pool `lab` of the module's hosts in this test's config."""
    cfg = {"ssh": {"pools": hosts.pool_config("lab", root_dir=str(sky_home / "remote"))}}
    (sky_home / "config.yaml").write_text(yaml.safe_dump(cfg))
    yield cfg["ssh"]["pools"]["lab"]
    for rec in cstate.list_clusters():
        api.down(rec.name)


def write_pool(sky_home: Path, **pools) -> None:
    (sky_home / "config.yaml").write_text(yaml.safe_dump({"ssh": {"pools": pools}}))


def task_file(tmp_path: Path, body: str, name: str = "t.yaml") -> str:
    p = tmp_path / name
    p.write_text("resources:\n  cloud: ssh\n" + body)
    return str(p)


def test_two_nodes_run_with_workdir_mounts_and_env(pool, tmp_path, sky_home):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "code.py").write_text("print('from workdir')\n")
    (wd / "big.bin").write_text("x")
    (wd / ".skyignore").write_text("*.bin\n")
    (tmp_path / "cfg.txt").write_text("mounted\n")
    f = task_file(tmp_path, f"""num_nodes: 2
workdir: {wd}
file_mounts:
  {sky_home}/remote/mnt/cfg.txt: {tmp_path}/cfg.txt
envs: {{MSG: hello}}
setup: echo setup-$SKYPILOT_NODE_RANK
run: |
  echo "$MSG rank=$SKYPILOT_NODE_RANK n=$SKYPILOT_NUM_NODES ips=$(echo "$SKYPILOT_NODE_IPS" | wc -l)"
  python3 code.py; ls; cat {sky_home}/remote/mnt/cfg.txt
""")
    lines: list[str] = []
    r = api.launch(f, "s2", on_line=lines.append)
    assert (r.returncode, r.status) == (0, "SUCCEEDED")
    for rank, role in ((0, "head"), (1, "worker1")):
        p = f"({role}, rank={rank}) "
        assert p + f"setup-{rank}" in lines and p + f"hello rank={rank} n=2 ips=2" in lines
        assert p + "from workdir" in lines and p + "mounted" in lines
        assert p + "big.bin" not in lines
    known = Path(pool["known_hosts"] if "known_hosts" in pool else sky_home / "ssh" / "known_hosts.lab")
    assert len(known.read_text().splitlines()) == 2  # recorded on first contact
    rec = cstate.get("s2")
    assert rec.status == "UP" and rec.region == "lab" and rec.num_nodes == 2
    # reuse: no re-provisioning, setup unchanged -> skipped
    lines.clear()
    r = api.launch(f, "s2", on_line=lines.append)
    assert r.reused and not any("setup-" in x for x in lines)


def test_worker_exit_255_is_its_own_failure(pool, tmp_path):
    f = task_file(tmp_path, "num_nodes: 2\nrun: '[ $SKYPILOT_NODE_RANK = 0 ] || exit 255'\n")
    lines: list[str] = []
    r = api.launch(f, "e255", on_line=lines.append)
    assert r.status == "FAILED" and r.returncode == 255
    assert "ERROR: run failed on node rank 1 with exit code 255" in lines
    assert cstate.get("e255").status == "UP"  # nothing was lost


def test_pool_capacity_and_claims(pool, tmp_path):
    f2 = task_file(tmp_path, "num_nodes: 2\nrun: echo a\n")
    api.launch(f2, "big", on_line=lambda s: None)
    with pytest.raises(ResourcesUnavailableError, match="1 free host"):
        api.launch(f2, "other", on_line=lambda s: None)
    assert cstate.get("other") is None
    api.autostop("big", 0, down=True)  # the head's agent downs it; status notices, hosts free up
    deadline = time.time() + 15
    while cstate.get("big") is not None and time.time() < deadline:
        api.status(refresh=True)
        time.sleep(0.2)
    assert cstate.get("big") is None
    assert api.launch(f2, "other", on_line=lambda s: None).status == "SUCCEEDED"


def test_cancel_and_down_kill_on_every_node(pool, tmp_path):
    from test_local_cluster import tagged_pids

    f = task_file(tmp_path, "num_nodes: 3\nrun: sleep 60\n")
    api.launch(f, "k", detach_run=True)
    deadline = time.time() + 10
    while api.queue("k")[-1].status != "RUNNING" and time.time() < deadline:
        time.sleep(0.1)
    deadline = time.time() + 5
    while len(tagged_pids("k")) < 4 and time.time() < deadline:  # daemon + 3 job shells
        time.sleep(0.05)
    assert len(tagged_pids("k")) >= 4
    assert api.cancel("k", [1]) == [1]
    deadline = time.time() + 10
    while len(tagged_pids("k")) > 1 and time.time() < deadline:
        time.sleep(0.05)
    assert len(tagged_pids("k")) <= 1  # the head's agent daemon may remain; job processes are gone
    assert api.queue("k")[-1].status == "CANCELLED"
    api.exec("k", "sleep 60", detach_run=True)
    api.stop("k")  # your hosts keep running; the cluster's processes do not
    assert tagged_pids("k") == [] and api.status(["k"], refresh=True)[0].status == "STOPPED"
    api.start("k")
    assert api.exec("k", "echo back", on_line=lambda s: None).status == "SUCCEEDED"
    assert api.queue("k")[1].status == "FAILED"  # its driver stopped with the cluster
    api.down("k")
    assert tagged_pids("k") == []
    assert cstate.get("k") is None


def test_host_key_mismatch_is_refused(pool, tmp_path, sky_home, hosts):
    f = task_file(tmp_path, "run: echo x\n")
    api.launch(f, "hk", on_line=lambda s: None)
    api.down("hk")
    known = sky_home / "ssh" / "known_hosts.lab"
    lines = known.read_text().splitlines()
    other_key = (hosts.dir / "client_key.pub").read_text().split()[1]  # not the host's key
    first = lines[0].split()
    known.write_text("\n".join([f"{first[0]} ssh-ed25519 {other_key}", *lines[1:]]) + "\n")
    from skybroker.runtime.runners import close_all

    close_all()
    with pytest.raises(SkyError, match="does not match the one recorded"):
        api.launch(f, "hk2", on_line=lambda s: None)
    assert cstate.get("hk2") is None


def test_wrong_key_unreachable_and_strict_are_clear_errors(hosts, tmp_path, sky_home):
    f = task_file(tmp_path, "run: echo x\n")
    bad_key = sshd.keygen(tmp_path / "bad_key")
    write_pool(sky_home, lab=hosts.pool_config("lab", identity_file=str(bad_key))["lab"])
    with pytest.raises(SkyError, match="Authentication to .* failed: wrong key or user"):
        api.launch(f, "w", on_line=lambda s: None)
    write_pool(sky_home, lab=dict(hosts.pool_config("lab")["lab"], hosts=[f"127.0.0.1:{sshd.free_port()}"]))
    with pytest.raises(SkyError, match="Cannot reach"):
        api.launch(f, "w", on_line=lambda s: None)
    write_pool(sky_home, lab=dict(hosts.pool_config("lab")["lab"], strict_host_keys=True,
                                  known_hosts=str(tmp_path / "empty_known_hosts")))
    with pytest.raises(SkyError, match="not in .* strict_host_keys"):
        api.launch(f, "w", on_line=lambda s: None)
    write_pool(sky_home, lab=dict(hosts.pool_config("lab")["lab"], identity_file=str(tmp_path / "none")))
    with pytest.raises(SkyError, match="identity_file .* does not exist"):
        api.launch(f, "w", on_line=lambda s: None)
    assert cstate.list_clusters() == []


def test_node_lost_mid_job_fails_job_and_refreshes_cluster(tmp_path_factory, tmp_path, sky_home):
    c = sshd.Cluster.start(tmp_path_factory.mktemp("lost"), 2)
    try:
        write_pool(sky_home, lab=c.pool_config("lab", root_dir=str(sky_home / "remote"))["lab"])
        f = task_file(tmp_path, "num_nodes: 2\nrun: |\n  echo started\n  sleep 30\n")
        api.launch(f, "lost", detach_run=True)
        deadline = time.time() + 10
        while api.queue("lost")[-1].status != "RUNNING" and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        c.nodes[1].kill_tree()  # the worker machine vanishes
        t0 = time.time()
        lines: list[str] = []
        out = api.logs("lost", on_line=lines.append)
        assert time.time() - t0 < 15
        assert out.status == "FAILED"
        assert any("node rank 1 (127.0.0.1) was lost" in x for x in lines)
        rec = cstate.get("lost")
        assert rec.status == "INIT" and "UNREACHABLE" in rec.last_error
        api.down("lost")  # the dead node is skipped with a warning; claims are released
        assert cstate.get("lost") is None
    finally:
        c.stop()
