"""Never leak on GCP: Ctrl-C at each step of a launch, then refresh + down leaves nothing."""

from __future__ import annotations

import pytest

from skybroker.clouds.base import ClusterInfo, ClusterSpec
from skybroker.clouds.gcp.provisioner import GCPProvisioner, list_tagged_instances

pytest_plugins = ["stubs.gcp_fixtures"]

# (client attribute, method, when, nth call)
STEPS = [
    ("firewalls", "insert", "before", 1),
    ("firewalls", "insert", "after", 1),
    ("instances", "insert", "before", 1),
    ("instances", "insert", "after", 1),   # VM requested, operation not awaited
    ("instances", "insert", "after", 2),
    ("instances", "list", "before", 2),    # waiting for RUNNING
]


def interrupting(fn, when, nth):
    calls = {"n": 0}

    def wrapper(*a, **kw):
        calls["n"] += 1
        if calls["n"] == nth and when == "before":
            raise KeyboardInterrupt
        out = fn(*a, **kw)
        if calls["n"] == nth and when == "after":
            raise KeyboardInterrupt
        return out

    return wrapper


CASES = [(step, nodes, spot) for step in STEPS for nodes, spot in ((1, False), (2, True))
         if not (step[:2] == ("instances", "insert") and step[3] > nodes)]  # 1 node: 1 insert


@pytest.mark.parametrize("step,nodes,spot", CASES, ids=lambda v: "-".join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_interrupted_gcp_launch_then_down_leaves_nothing(gce, monkeypatch, step, nodes, spot):
    from skybroker.clouds import clients

    which, method, when, nth = step
    prov = GCPProvisioner(poll_s=0.001, timeout_s=5)
    real = clients.gcp_client

    def patched(kind):
        c = real(kind)
        if kind.lower() == which:
            setattr(c, method, interrupting(getattr(c, method), when, nth))
        return c

    monkeypatch.setattr(clients, "gcp_client", patched)
    spec = ClusterSpec("intr", "gcp", "us-central1", "us-central1-b", "n1-standard-4", spot, nodes,
                       ports=["8080"])
    with pytest.raises(KeyboardInterrupt):
        prov.launch(spec)
    monkeypatch.setattr(clients, "gcp_client", real)
    GCPProvisioner(poll_s=0.001, timeout_s=5).terminate(
        ClusterInfo("intr", "gcp", "us-central1", None, "", spot))
    assert list_tagged_instances() == [] and not gce.instances and not gce.firewalls
