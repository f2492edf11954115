"""`sky launch` on `cloud: gcp` end to end: the GCE stub provisions a spot VM, a loopback
sshd plays it (via `gcp.ssh_endpoint_override`), run output streams back, refresh sees it
UP, and `sky down` deletes it."""

from __future__ import annotations

import getpass

import yaml
from click.testing import CliRunner

pytest_plugins = ["stubs.gcp_fixtures", "stubs.vm"]


def test_sky_launch_cloud_gcp_spot_runs_then_down(gce, vm, sky_home, tmp_path):
    (sky_home / "config.yaml").write_text(yaml.safe_dump({"gcp": {
        "ssh_endpoint_override": f"127.0.0.1:{vm.nodes[0].port}", "ssh_user": getpass.getuser(),
        "node_root": vm.root}}))
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({"resources": {"cloud": "gcp", "region": "us-central1", "cpus": "2+",
                                                  "use_spot": True},
                                    "run": "echo gcp rank=$SKYPILOT_NODE_RANK"}))
    from skybroker.cli import cli

    res = CliRunner().invoke(cli, ["launch", "-y", "-c", "gcpe2e", str(task)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "gcp rank=0" in res.output
    (body,) = gce.requests("POST", r"/instances$")
    assert body["scheduling"]["provisioningModel"] == "SPOT"
    assert body["metadata"]["items"][0]["key"] == "ssh-keys"
    res = CliRunner().invoke(cli, ["status", "--refresh"], catch_exceptions=False)
    assert "gcpe2e" in res.output and "UP" in res.output
    res = CliRunner().invoke(cli, ["down", "-y", "gcpe2e"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert not gce.instances and not gce.firewalls
