"""SDK-cloud nodes reuse the runtime: defaults for how to reach them and where their root is."""

from __future__ import annotations

from skybroker.clouds.base import ClusterInfo, NodeInfo
from skybroker.runtime import cluster as rt
from skybroker.runtime.runners import LocalRunner, SSHRunner


def test_sdk_cloud_nodes_get_ssh_defaults_and_resolved_roots(monkeypatch, sky_home):
    info = ClusterInfo("vm", "gcp", "us-central1", "us-central1-a", "n2-standard-4", False,
                       [NodeInfo("i-0", 0, "RUNNING", "10.0.0.2", "34.1.2.3", 22, "gcpuser"),
                        NodeInfo("i-1", 1, "RUNNING", "10.0.0.3", "34.1.2.4", 22, "gcpuser")])
    calls = []

    def fake_run(self, cmd, **kw):
        calls.append((self.host, cmd))
        return 0, f"/home/{self.user}\n".encode()

    monkeypatch.setattr(SSHRunner, "run", fake_run)
    r = rt.node_runner(info, info.nodes[1])
    assert isinstance(r, SSHRunner) and (r.host, r.user) == ("34.1.2.4", "gcpuser")
    assert r.identity_file.endswith("keys/sky-key")  # the broker's own key (clients.ssh_identity)
    assert r.known_hosts.endswith("ssh/known_hosts.gcp.vm")  # per cluster: cloud IPs get reused
    assert rt.ensure_roots(info) is True
    assert [n.extra["root"] for n in info.nodes] == ["/home/gcpuser/.skybroker/vm/0",
                                                      "/home/gcpuser/.skybroker/vm/1"]
    assert rt.ensure_roots(info) is False and len(calls) == 2  # resolved once, then stored
    cj = rt.cluster_json(info, 1)
    assert cj["nodes"][1]["ssh"] == {"host": "10.0.0.3", "port": 22, "user": "gcpuser"}
    assert cj["nodes"][0]["ssh"] is None and cj["num_gpus_per_node"] == 1


def test_local_nodes_run_locally(sky_home):
    info = ClusterInfo("l", "local", "local", "local-a", "local.small", False,
                       [NodeInfo("l-0", 0, "RUNNING", "127.0.0.1", extra={"root": str(sky_home)})])
    assert isinstance(rt.node_runner(info, info.nodes[0]), LocalRunner)
