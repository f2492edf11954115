"""`sky launch` on `cloud: azure` end to end: the ARM stub provisions a Spot VM with its
network, a loopback sshd plays it (via `azure.ssh_endpoint_override`), run output streams
back, refresh sees it UP, and `sky down` deletes its resource group."""

from __future__ import annotations

import getpass

import yaml
from click.testing import CliRunner

pytest_plugins = ["stubs.azure_fixtures", "stubs.vm"]


def test_sky_launch_cloud_azure_spot_runs_then_down(arm, vm, sky_home, tmp_path):
    (sky_home / "config.yaml").write_text(yaml.safe_dump({"azure": {
        "ssh_endpoint_override": f"127.0.0.1:{vm.nodes[0].port}", "ssh_user": getpass.getuser(),
        "node_root": vm.root}}))
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({"resources": {"cloud": "azure", "region": "eastus", "cpus": "2+",
                                                  "use_spot": True},
                                    "run": "echo azure rank=$SKYPILOT_NODE_RANK"}))
    from skybroker.cli import cli

    res = CliRunner().invoke(cli, ["launch", "-y", "-c", "aze2e", str(task)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "azure rank=0" in res.output
    (vmbody,) = arm.requests("PUT", r"/virtualMachines/[^/]+$")
    assert vmbody["properties"]["priority"] == "Spot"
    res = CliRunner().invoke(cli, ["status", "--refresh"], catch_exceptions=False)
    assert "aze2e" in res.output and "UP" in res.output
    res = CliRunner().invoke(cli, ["down", "-y", "aze2e"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert not arm.groups and not arm.resources
