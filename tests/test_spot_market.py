"""The local cloud's trace-bound spot zones: real CapacityErrors, real kills, PREEMPTED."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from skybroker.clouds.base import PREEMPTED, RUNNING, ClusterSpec
from skybroker.clouds.local.provisioner import LocalProvisioner, _tag_prefix
from skybroker.clouds.local.spot_market import configured_market
from skybroker.errors import CapacityError, SkyError


def write_market(home: Path, data: list[int], spt: float, epoch: float, zone: str = "local-b",
                 start_tick: int = 0, gap: int = 600) -> Path:
    trace = home / "trace.json"
    trace.write_text(json.dumps({"metadata": {"gap_seconds": gap}, "data": data}))
    (home / "config.yaml").write_text(
        f"local:\n  spot_markets:\n    {zone}:\n      trace: trace.json\n"
        f"      seconds_per_tick: {spt}\n      start_tick: {start_tick}\n      epoch: {epoch}\n")
    return trace


def spec(name: str, spot: bool, zone: str = "local-b") -> ClusterSpec:
    return ClusterSpec(cluster_name=name, cloud="local", region="local", zone=zone,
                       instance_type="local.small", spot=spot, broker_id="b")


@pytest.fixture(autouse=True)
def _reap_all(sky_home):
    yield
    from skybroker.runtime.agent import kill_env

    kill_env("SKYBROKER_HOME", str(sky_home))


def test_ticks_and_window(sky_home):
    write_market(sky_home, [1, 1, 0, 0, 1, 2], spt=0.5, epoch=1000.0, start_tick=1)
    mz = configured_market().zones["local-b"]
    assert mz.tick_at(1000.0) == 1 and mz.tick_at(1000.49) == 1 and mz.tick_at(1000.5) == 2
    assert mz.wall_of_tick(3) == 1001.0
    assert mz.next_unavailable(0) == 2 and mz.next_unavailable(4) == 6  # the trace's end
    assert mz.window(4, 4).tolist() == [True, True, False, False]
    assert mz.available_tick(5, nodes=2) and not mz.available_tick(4, nodes=2)


def test_bad_config_names_the_field(sky_home):
    (sky_home / "config.yaml").write_text("local:\n  spot_markets:\n    local-z: {trace: x.json}\n")
    with pytest.raises(SkyError, match="local-z"):
        configured_market()


def test_spot_refused_while_unavailable_on_demand_always(sky_home):
    write_market(sky_home, [0] * 100, spt=1, epoch=time.time())
    prov = LocalProvisioner()
    with pytest.raises(CapacityError) as e:
        prov.launch(spec("s1", spot=True))
    assert e.value.scope == "zone"
    info = prov.launch(spec("o1", spot=False))
    assert set(prov.query(info).values()) == {RUNNING}
    # an unbound zone has spot capacity
    info2 = prov.launch(spec("s2", spot=True, zone="local-a"))
    assert set(prov.query(info2).values()) == {RUNNING}
    prov.terminate(info)
    prov.terminate(info2)


def test_spot_processes_killed_when_capacity_disappears(sky_home):
    now = time.time()
    # available for ticks 0..2 (0.4 s each), gone from tick 3: preempted ~1.2 s after epoch
    write_market(sky_home, [1, 1, 1, 0, 0, 1, 1, 1], spt=0.4, epoch=now)
    prov = LocalProvisioner()
    info = prov.launch(spec("sp", spot=True))
    tag = _tag_prefix("sp") + "0"
    proc = subprocess.Popen(["sleep", "30"], env=dict(os.environ, SKYBROKER_NODE_TAG=tag))
    assert set(prov.query(info).values()) == {RUNNING}
    proc.wait(timeout=5)  # killed by the reaper, not by us
    died = time.time()
    assert proc.returncode == -9
    assert now + 1.2 - 0.05 <= died <= now + 1.2 + 1.0  # at the boundary (slack: a loaded CI)
    assert set(prov.query(info).values()) == {PREEMPTED}
    # capacity back at tick 5: still PREEMPTED (the instance is gone), a relaunch works
    time.sleep(max(0.0, now + 2.05 - time.time()))
    assert set(prov.query(info).values()) == {PREEMPTED}
    prov.terminate(info)
    info = prov.launch(spec("sp", spot=True))
    assert set(prov.query(info).values()) == {RUNNING}
    prov.terminate(info)


def test_terminate_kills_the_reaper(sky_home):
    write_market(sky_home, [1] * 1000, spt=1, epoch=time.time())
    prov = LocalProvisioner()
    info = prov.launch(spec("r1", spot=True))
    from skybroker.runtime.agent import kill_env

    time.sleep(0.3)
    assert kill_env("SKYBROKER_NODE_TAG", _tag_prefix("r1"), 0, prefix=True) == 1  # the reaper
    prov.terminate(info)
    assert kill_env("SKYBROKER_NODE_TAG", _tag_prefix("r1"), 0, prefix=True) == 0


def test_sky_launch_rehearsal_is_preempted_on_the_trace(sky_home, tmp_path):
    """The user feature: `sky launch --use-spot` in a trace-bound zone lives as long as the
    trace's capacity; then its job dies and `sky status` says the spot node was preempted."""
    from click.testing import CliRunner

    from skybroker.cli import cli
    from skybroker.core import lifecycle

    write_market(sky_home, [1, 1, 1, 1, 0, 1], spt=0.5, epoch=time.time())
    task = tmp_path / "t.yaml"
    task.write_text("resources:\n  cloud: local\n  zone: local-b\n  use_spot: true\n"
                    "run: echo started; sleep 30\n")
    res = CliRunner().invoke(cli, ["launch", "-y", "-d", "-c", "rehearsal", str(task)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    end = time.time() + 10
    while time.time() < end:
        (rec,) = lifecycle.status(["rehearsal"])
        if rec.status != "UP":
            break
        time.sleep(0.1)
    assert rec.status == "INIT" and "preempted" in (rec.last_error or "")
    from skybroker.runtime.agent import kill_env

    assert kill_env("SKYBROKER_NODE_TAG", _tag_prefix("rehearsal"), 0, prefix=True) == 0
    lifecycle.down("rehearsal")
