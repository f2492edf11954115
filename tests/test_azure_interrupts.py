"""Never leak on Azure: Ctrl-C at each step of a launch, then refresh + down leaves nothing."""

from __future__ import annotations

import pytest

from skybroker.clouds.azure.provisioner import AzureProvisioner, list_tagged_instances
from skybroker.clouds.base import ClusterInfo, ClusterSpec

pytest_plugins = ["stubs.azure_fixtures"]

# (client kind, operations group, method, when, nth call)
STEPS = [
    ("resource", "resource_groups", "create_or_update", "after", 1),
    ("network", "network_security_groups", "begin_create_or_update", "after", 1),
    ("network", "virtual_networks", "begin_create_or_update", "before", 1),
    ("network", "public_ip_addresses", "begin_create_or_update", "after", 1),
    ("network", "network_interfaces", "begin_create_or_update", "after", 1),
    ("compute", "virtual_machines", "begin_create_or_update", "before", 1),
    ("compute", "virtual_machines", "begin_create_or_update", "after", 1),  # LRO not awaited
    ("compute", "virtual_machines", "list", "before", 2),                   # VMs created
]


class Interrupt:
    def __init__(self, fn, when: str, nth: int) -> None:
        self.fn, self.when, self.nth, self.n = fn, when, nth, 0

    def __call__(self, *a, **kw):
        self.n += 1
        if self.n == self.nth and self.when == "before":
            raise KeyboardInterrupt
        out = self.fn(*a, **kw)
        if self.n == self.nth and self.when == "after":
            raise KeyboardInterrupt
        return out


@pytest.mark.parametrize("spot", [False, True], ids=["od", "spot"])
@pytest.mark.parametrize("step", STEPS, ids=lambda s: "-".join(map(str, s[1:])))
def test_interrupted_azure_launch_then_down_leaves_nothing(arm, monkeypatch, step, spot):
    from skybroker.clouds import clients

    kind, group, method, when, nth = step
    real = clients.azure_client

    def patched(k):
        c = real(k)
        if k == kind:
            ops = getattr(c, group)
            setattr(ops, method, Interrupt(getattr(ops, method), when, nth))
        return c

    monkeypatch.setattr(clients, "azure_client", patched)
    spec = ClusterSpec("intr", "azure", "eastus", None, "Standard_D2s_v5", spot, 2, ports=["8080"])
    with pytest.raises(KeyboardInterrupt):
        AzureProvisioner(poll_s=0.001, timeout_s=10).launch(spec)
    monkeypatch.setattr(clients, "azure_client", real)
    AzureProvisioner(poll_s=0.001, timeout_s=10).terminate(
        ClusterInfo("intr", "azure", "eastus", None, "", spot))
    assert list_tagged_instances() == [] and not arm.groups and not arm.resources
