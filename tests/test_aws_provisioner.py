"""AWSProvisioner against moto's server over real HTTP (real boto3 wire calls)."""

from __future__ import annotations

import pytest

from skybroker import errors
from skybroker.clouds import clients
from skybroker.clouds.aws.provisioner import AWSProvisioner, list_tagged_instances, reconcile
from skybroker.clouds.base import PREEMPTED, RUNNING, STOPPED, TAG_BROKER, TAG_CLUSTER, ClusterSpec

pytest_plugins = ["stubs.aws_fixtures"]  # the `aws` fixture: moto over HTTP, dummy creds

PUBKEY = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC3F6tyPEFEzV0LX3X8BsXdMsQz1x2cEikKDEY0aIj41qgxMCP"
          "/iteneqXSIFZBp5vizPvaoIR3Um9xK7PGoW8giupGn+EPuxIA4cDM4vzOqOkiMPhz5XK0whEjkVzTo4+S0puvDZu"
          "wIsdiW9mxhJc7tgBNL0cYlWSYVkz4G/fslNfRPW5mYAM49f4fhtxPb5ok4Q2Lg9dPKVHO/Bgeu5woMc7RY0p1ej"
          "6D4CKFE6lymSDJpW0YHX/wqE9+cfEauh7xZcG0q9t2ta6F6fmX0agvpFyZo8aFbXeUBr7osSCJNgvavWbM/06ni"
          "WrOvYX2xwWdhXmXSrbX8ZbabVohBK41 test@skybroker")


def spec(name="c1", region="us-east-1", zone="us-east-1a", itype="m5.large", spot=False, n=1, **kw):
    return ClusterSpec(name, "aws", region, zone, itype, spot, n, broker_id=clients.broker_id(),
                       ssh_public_key=PUBKEY, **kw)


def prov():
    return AWSProvisioner(poll_s=0.01, timeout_s=5)


def test_launch_sends_spot_market_tags_disk_key_and_security_group(aws):
    info = prov().launch(spec(spot=True, n=2, ports=["8080", "9000-9010"], disk_size_gb=100,
                              labels={"team": "ml"}))
    assert [n.rank for n in info.nodes] == [0, 1] and all(n.state == RUNNING for n in info.nodes)
    assert all(n.external_ip and n.internal_ip and n.ssh_user == "ubuntu" for n in info.nodes)
    run = aws.calls("RunInstances")[-1]
    assert run["InstanceMarketOptions.MarketType"] == "spot"
    assert run["InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior"] == "terminate"
    assert run["MinCount"] == run["MaxCount"] == "2" and run["InstanceType"] == "m5.large"
    assert run["BlockDeviceMapping.1.Ebs.VolumeSize"] == "100"
    assert run["BlockDeviceMapping.1.Ebs.DeleteOnTermination"] == "true"
    assert run["NetworkInterface.1.SubnetId"].startswith("subnet-")
    assert run["KeyName"].startswith("skybroker-")
    tags = {v: run[k.replace(".Key", ".Value")] for k, v in run.items()
            if k.startswith("TagSpecification.1.Tag.") and k.endswith(".Key")}
    assert tags[TAG_CLUSTER] == "c1" and tags[TAG_BROKER] == clients.broker_id() and tags["team"] == "ml"
    ports = {(p["IpPermissions.1.FromPort"], p["IpPermissions.1.ToPort"])
             for p in aws.calls("AuthorizeSecurityGroupIngress")}
    assert ports == {("22", "22"), ("8080", "8080"), ("9000", "9010")}
    ec2 = clients.aws_client("ec2", "us-east-1")
    insts = [i for r in ec2.describe_instances(Filters=[
        {"Name": f"tag:{TAG_BROKER}", "Values": [clients.broker_id()]}])["Reservations"]
        for i in r["Instances"]]
    assert {i["InstanceLifecycle"] for i in insts} == {"spot"}
    assert {i["Placement"]["AvailabilityZone"] for i in insts} == {"us-east-1a"}


def test_on_demand_has_no_market_options_and_launch_is_idempotent(aws):
    p = prov()
    first = p.launch(spec(n=2))
    again = p.launch(spec(n=2))
    assert "InstanceMarketOptions.MarketType" not in aws.calls("RunInstances")[0]
    assert len(aws.calls("RunInstances")) == 1  # the second launch found both nodes
    assert [n.node_id for n in first.nodes] == [n.node_id for n in again.nodes]


def test_partial_cluster_is_completed_with_the_missing_ranks(aws):
    p = prov()
    p.launch(spec(n=1))
    info = p.launch(spec(n=3))
    assert [n.rank for n in info.nodes] == [0, 1, 2]
    assert aws.calls("RunInstances")[-1]["MinCount"] == "2"


def test_stop_start_query_terminate(aws):
    p = prov()
    info = p.launch(spec(n=2))
    p.stop(info)
    assert set(p.query(info).values()) == {STOPPED}
    info = p.start(info)
    assert set(p.query(info).values()) == {RUNNING}
    # launch on a stopped cluster restarts it instead of creating new nodes
    p.stop(info)
    again = p.launch(spec(n=2))
    assert {n.node_id for n in again.nodes} == {n.node_id for n in info.nodes}
    p.terminate(info)
    assert list_tagged_instances(["us-east-1"]) == []
    assert set(p.query(info).values()) == {"TERMINATED"}
    sgs = clients.aws_client("ec2", "us-east-1").describe_security_groups()["SecurityGroups"]
    assert not [g for g in sgs if g["GroupName"].startswith(f"skybroker-c1-{clients.broker_id()}")]


def test_spot_cannot_be_stopped(aws):
    info = prov().launch(spec(spot=True))
    with pytest.raises(errors.NotSupportedError):
        prov().stop(info)


def test_spot_interruption_reads_as_preempted(aws):
    p = prov()
    info = p.launch(spec(spot=True))
    from moto.backends import get_backend

    backend = get_backend("ec2")["123456789012"]["us-east-1"]
    inst = backend.get_instance(info.nodes[0].node_id)
    backend.terminate_instances([inst.id])
    from moto.ec2.models.instances import StateReason

    inst.state_reason = StateReason("Server.SpotInstanceTermination: Spot instance termination",
                                    "Server.SpotInstanceTermination")
    assert p.query(info) == {inst.id: PREEMPTED}


def test_list_tagged_and_reconcile_only_see_this_broker(aws):
    p = prov()
    p.launch(spec("mine", n=2))
    other = spec("theirs")
    other.broker_id = "someoneelse"
    p.launch(other)
    rows = list_tagged_instances(["us-east-1"])
    assert {r["cluster"] for r in rows} == {"mine"} and sorted(r["rank"] for r in rows) == [0, 1]
    assert len(list_tagged_instances(["us-east-1"], broker="*")) >= 3
    info = reconcile("mine", "us-east-1")
    assert info is not None and [n.rank for n in info.nodes] == [0, 1]
    assert reconcile("nothing", "us-east-1") is None


@pytest.mark.parametrize("code,exc,scope", [
    ("InsufficientInstanceCapacity", errors.CapacityError, "zone"),
    ("SpotMaxPriceTooLow", errors.CapacityError, "zone"),
    ("Unsupported", errors.CapacityError, "zone"),
    ("VcpuLimitExceeded", errors.QuotaError, None),
    ("MaxSpotInstanceCountExceeded", errors.QuotaError, None),
    ("InstanceLimitExceeded", errors.QuotaError, None),
    ("AuthFailure", errors.CredentialsError, None),
    ("UnrecognizedClientException", errors.CredentialsError, None),
    ("InvalidParameterValue", errors.InvalidRequestError, None),
    ("InvalidParameterCombination", errors.InvalidRequestError, None),
])
def test_run_instances_error_mapping(aws, code, exc, scope):
    aws.fault("RunInstances", code, times=1)
    with pytest.raises(exc) as ei:
        prov().launch(spec(spot=True))
    assert code in str(ei.value)
    if scope:
        assert ei.value.scope == scope


def test_throttling_is_retried_then_surfaces_as_throttled(aws):
    aws.fault("RunInstances", "RequestLimitExceeded", times=2)
    info = prov().launch(spec())
    assert info.nodes and len(aws.calls("RunInstances")) >= 3
    aws.fault("DescribeInstances", "Throttling", times=100)
    with pytest.raises(errors.ThrottledError):
        prov().query(info)


def test_missing_credentials_is_a_credentials_error(aws, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(errors.CredentialsError):
        prov().launch(spec())


def test_image_from_config_and_bad_image_id(aws, sky_home):
    (sky_home / "config.yaml").write_text("aws:\n  image_id: {us-east-1: ami-785db401}\n")
    prov().launch(spec())
    assert aws.calls("RunInstances")[-1]["ImageId"] == "ami-785db401"
    with pytest.raises(errors.InvalidRequestError):
        prov().launch(spec("c2", image_id="skypilot:gpu-ubuntu"))


def test_ssh_endpoint_override_points_nodes_at_local_sshd(aws, sky_home):
    (sky_home / "config.yaml").write_text("aws:\n  ssh_endpoint_override: [127.0.0.1:2201, 127.0.0.1:2202]\n")
    info = prov().launch(spec(n=2))
    assert [(n.external_ip, n.ssh_port) for n in info.nodes] == [("127.0.0.1", 2201), ("127.0.0.1", 2202)]
    assert info.nodes[0].extra["cloud_external_ip"]


def test_default_image_follows_architecture_and_gpu(aws, monkeypatch):
    from skybroker.clouds.aws import provisioner as mod

    asked = []

    def fake_ssm(self, ssm, name):
        asked.append(name)
        return None  # no SSM in moto: falls back to Canonical images by name

    monkeypatch.setattr(mod.AWSProvisioner, "_ssm_image", fake_ssm)
    monkeypatch.setattr(mod, "_AMI_CACHE", {})
    with pytest.raises(errors.ProvisionError, match="arm64"):  # moto ships no arm64 Ubuntu
        prov().launch(spec("arm", itype="m7g.large"))
    prov().launch(spec("gpu", itype="g5.xlarge", accelerators={"A10G": 1}))
    assert "/arm64/" in asked[0] and "deeplearning" in asked[1] and "x86_64" in asked[1]
    names = [f["Filter.1.Value.1"] for f in aws.calls("DescribeImages") if "Filter.1.Value.1" in f]
    assert "arm64" in names[0] and "amd64" in names[1]


def test_open_ports_adds_rules_once(aws):
    p = prov()
    info = p.launch(spec())
    p.open_ports(info, ["7000", "7000", "7100-7200"])
    p.open_ports(info, ["7000"])  # duplicates are fine
    sg = clients.aws_client("ec2", "us-east-1").describe_security_groups(Filters=[
        {"Name": f"tag:{TAG_BROKER}", "Values": [clients.broker_id()]}])["SecurityGroups"][0]
    assert {(r["FromPort"], r["ToPort"]) for r in sg["IpPermissions"]} == {(22, 22), (7000, 7000), (7100, 7200)}


def test_sky_check_verify_calls_sts(aws):
    from skybroker.clouds.check import check_aws

    r = check_aws(verify=True)
    assert r.ok and "account 123456789012" in r.detail
