"""`sky launch` on `cloud: aws` end to end: moto provisions, a local sshd plays the VM.

The instance "IP" is redirected by `aws.ssh_endpoint_override` to a real sshd on loopback that
accepts this broker's own SSH key (the one pushed to EC2 as the key pair), so setup/run go
through the real SSH runtime; `sky down` then leaves zero instances in moto.
"""

from __future__ import annotations

import getpass

import yaml
from click.testing import CliRunner

from skybroker.clouds.aws.provisioner import list_tagged_instances

pytest_plugins = ["stubs.aws_fixtures", "stubs.vm"]


def test_sky_launch_cloud_aws_runs_setup_and_run_then_down_leaves_nothing(aws, vm, sky_home, tmp_path):
    (sky_home / "config.yaml").write_text(yaml.safe_dump({"aws": {
        "ssh_endpoint_override": f"127.0.0.1:{vm.nodes[0].port}", "ssh_user": getpass.getuser(),
        "node_root": vm.root}}))
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({
        "name": "e2e", "resources": {"cloud": "aws", "region": "us-east-1", "instance_type": "m6i.large"},
        "envs": {"GREETING": "hello-from-aws"},
        "setup": "echo setup-ran > setup.txt",
        "run": "cat setup.txt; echo $GREETING rank=$SKYPILOT_NODE_RANK",
    }))
    from skybroker.cli import cli

    res = CliRunner().invoke(cli, ["launch", "-y", "-c", "awse2e", str(task)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "setup-ran" in res.output and "hello-from-aws rank=0" in res.output
    rows = list_tagged_instances(["us-east-1"])
    assert [r["cluster"] for r in rows] == ["awse2e"]
    run = aws.calls("RunInstances")[0]
    assert run["InstanceType"] == "m6i.large" and run["KeyName"].startswith("skybroker-")
    res = CliRunner().invoke(cli, ["down", "-y", "awse2e"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert list_tagged_instances(["us-east-1"]) == []
