"""The failover loop driving the real AWS provisioner against moto with injected stock-outs."""

from __future__ import annotations

import pytest
from placements import placement

from skybroker import errors
from skybroker.clouds import clients
from skybroker.clouds.aws.provisioner import AWSProvisioner, list_tagged_instances
from skybroker.clouds.base import ClusterSpec
from skybroker.core import failover as fo

pytest_plugins = ["stubs.aws_fixtures", "stubs.gcp_fixtures"]


def make_spec(p):
    o = p.offer
    return ClusterSpec("fo", o.cloud, o.region, o.zone, o.instance_type, p.spot, p.num_nodes)


def providers(extra=None):
    aws = AWSProvisioner(poll_s=0.01, timeout_s=5)
    table = {"aws": aws, **(extra or {})}
    return lambda cloud: table[cloud]


def test_failover_3_zones_2_regions_2_clouds_ends_on_first_with_capacity(aws, gce, capsys):
    """The issue's bar: real boto3 (moto) and google-cloud-compute (GCE stub) over HTTP."""
    from skybroker.clouds.gcp.provisioner import GCPProvisioner
    from skybroker.clouds.gcp.provisioner import list_tagged_instances as gcp_list

    for z in ("us-east-1a", "us-east-1b", "us-east-1c"):
        aws.fault("RunInstances", "InsufficientInstanceCapacity", match=f"AvailabilityZone={z}")
    aws.fault("RunInstances", "MaxSpotInstanceCountExceeded", match="AvailabilityZone=us-west-2a")
    gce.fail_insert("ZONE_RESOURCE_POOL_EXHAUSTED", zone="us-central1-a")
    plan = [placement("aws", "us-east-1", z, "p5.48xlarge", True)
            for z in ("us-east-1a", "us-east-1b", "us-east-1c")]
    plan += [placement("aws", "us-west-2", z, "p5.48xlarge", True) for z in ("us-west-2a", "us-west-2b")]
    plan += [placement("gcp", "us-central1", z, "a3-highgpu-8g", True)
             for z in ("us-central1-a", "us-central1-b")]
    plan += [placement("aws", "eu-west-1", "eu-west-1a", "p5.48xlarge", False)]
    gcp = GCPProvisioner(poll_s=0.001, timeout_s=5)
    info, chosen, attempts = fo.provision_with_failover(
        plan, make_spec, get_provisioner=providers({"gcp": gcp}),
        on_attempt=lambda a: print(a.line()))
    assert chosen is plan[6] and info.cloud == "gcp" and info.zone == "us-central1-b"
    assert [a.outcome for a in attempts] == ["CAPACITY"] * 3 + ["QUOTA", "CAPACITY", "UP"]
    assert [a.placement for a in attempts] == plan[:4] + plan[5:7]  # plan order; us-west-2b skipped
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and "InsufficientInstanceCapacity" in lines[0]
    assert "ZONE_RESOURCE_POOL_EXHAUSTED" in lines[4]
    # nothing of ours is left from the failed attempts; the one cluster is up on GCP
    assert list_tagged_instances(["us-east-1", "us-west-2"]) == []
    assert [r["zone"] for r in gcp_list()] == ["us-central1-b"]


def test_total_failure_prints_table_and_leaves_nothing(aws):
    aws.fault("RunInstances", "InsufficientInstanceCapacity", times=10)
    plan = [placement("aws", "us-east-1", z, "m5.large", s)
            for z in ("us-east-1a", "us-east-1b") for s in (True, False)]
    with pytest.raises(errors.ResourcesUnavailableError) as ei:
        fo.provision_with_failover(plan, make_spec, get_provisioner=providers())
    assert str(ei.value).count("InsufficientInstanceCapacity") == 4
    assert list_tagged_instances(["us-east-1"]) == []


def test_capacity_lost_during_wait_fails_over_and_cleans_up(aws, monkeypatch):
    """A spot node reclaimed before it is running: the attempt fails, and it is torn down."""
    from moto.backends import get_backend
    from moto.ec2.models.instances import StateReason

    ec2 = clients.aws_client("ec2", "us-east-1")

    def reclaim(parsed, **kw):
        backend = get_backend("ec2")["123456789012"]["us-east-1"]
        for inst in parsed["Instances"]:
            if inst["Placement"]["AvailabilityZone"] == "us-east-1a":
                backend.terminate_instances([inst["InstanceId"]])
                backend.get_instance(inst["InstanceId"]).state_reason = StateReason(
                    "Server.SpotInstanceTermination", "Server.SpotInstanceTermination")

    ec2.meta.events.register("after-call.ec2.RunInstances", reclaim)
    try:
        plan = [placement("aws", "us-east-1", z, "m5.large", True) for z in ("us-east-1a", "us-east-1b")]
        info, chosen, attempts = fo.provision_with_failover(plan, make_spec, get_provisioner=providers())
    finally:
        ec2.meta.events.unregister("after-call.ec2.RunInstances", reclaim)
    assert chosen.offer.zone == "us-east-1b" and [a.outcome for a in attempts] == ["CAPACITY", "UP"]
    assert {r["zone"] for r in list_tagged_instances(["us-east-1"])} == {"us-east-1b"}


def test_sky_launch_failing_everywhere_prints_the_attempts_table(aws, tmp_path, capsys):
    """The CLI path: every zone of the pinned region stocks out -> exit 1 with the table."""
    import yaml

    from skybroker.cli import main

    aws.fault("RunInstances", "InsufficientInstanceCapacity", times=100)
    task = tmp_path / "t.yaml"
    task.write_text(yaml.safe_dump({"resources": {"cloud": "aws", "region": "us-east-1",
                                                  "instance_type": "m6i.large", "use_spot": True},
                                    "run": "echo hi"}))
    with pytest.raises(SystemExit) as ei:
        main(["launch", "-y", "-c", "nocap", str(task)])
    assert ei.value.code == 1
    err = capsys.readouterr().err
    assert "OUTCOME" in err and err.count("InsufficientInstanceCapacity") >= 2
    assert "us-east-1a" in err and "us-east-1b" in err
    assert list_tagged_instances(["us-east-1"]) == []
