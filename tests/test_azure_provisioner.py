"""AzureProvisioner: azure-mgmt-* over TLS against the ARM stub (LROs, Spot fields, teardown)."""

from __future__ import annotations

import pytest

from skybroker import errors
from skybroker.clouds import clients
from skybroker.clouds.azure.provisioner import AzureProvisioner, list_tagged_instances
from skybroker.clouds.base import PREEMPTED, RUNNING, STOPPED, TAG_BROKER, TAG_CLUSTER, ClusterSpec

pytest_plugins = ["stubs.azure_fixtures"]


def spec(name="c1", zone="eastus-1", itype="Standard_NC4as_T4_v3", spot=False, n=1, **kw):
    return ClusterSpec(name, "azure", "eastus", zone, itype, spot, n, broker_id=clients.broker_id(),
                       ssh_public_key="ssh-ed25519 AAAA t@x", **kw)


def prov():
    return AzureProvisioner(poll_s=0.001, timeout_s=10)


def test_spot_vm_sends_priority_eviction_max_price_and_full_network(arm):
    info = prov().launch(spec(spot=True, n=2, ports=["8080"], disk_size_gb=64))
    vms = arm.requests("PUT", r"/virtualMachines/[^/]+$")
    assert len(vms) == 2
    p = vms[0]["properties"]
    assert p["priority"] == "Spot" and p["evictionPolicy"] == "Delete"
    assert p["billingProfile"] == {"maxPrice": -1.0}
    assert vms[0]["zones"] == ["1"] and p["hardwareProfile"]["vmSize"] == "Standard_NC4as_T4_v3"
    assert p["storageProfile"]["osDisk"]["diskSizeGB"] == 64
    assert p["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    assert vms[0]["tags"][TAG_CLUSTER] == "c1" and vms[0]["tags"][TAG_BROKER] == clients.broker_id()
    nsg = arm.requests("PUT", r"/networkSecurityGroups/")[0]
    assert [r["properties"]["destinationPortRange"] for r in nsg["properties"]["securityRules"]] == ["22", "8080"]
    assert arm.requests("PUT", r"/virtualNetworks/") and len(arm.requests("PUT", r"/publicIPAddresses/")) == 2
    assert len(arm.requests("PUT", r"/networkInterfaces/")) == 2
    assert [n.rank for n in info.nodes] == [0, 1] and all(n.state == RUNNING for n in info.nodes)
    assert all(n.external_ip and n.internal_ip for n in info.nodes)


def test_on_demand_has_no_spot_fields_and_relaunch_adopts(arm):
    p = prov()
    a = p.launch(spec(n=2))
    b = p.launch(spec(n=2))
    vms = arm.requests("PUT", r"/virtualMachines/[^/]+$")
    assert len(vms) == 2 and "priority" not in vms[0]["properties"]
    assert [n.node_id for n in a.nodes] == [n.node_id for n in b.nodes]


def test_stop_start_terminate(arm):
    p = prov()
    info = p.launch(spec(n=2))
    assert len(list_tagged_instances()) == 2
    p.stop(info)
    assert set(p.query(info).values()) == {STOPPED}
    assert arm.requests("POST", r"/deallocate$")
    info = p.start(info)
    assert set(p.query(info).values()) == {RUNNING}
    p.terminate(info)
    assert not arm.groups and not arm.resources and list_tagged_instances() == []
    assert set(p.query(info).values()) == {"TERMINATED"}


def test_spot_eviction_reads_as_preempted(arm):
    p = prov()
    info = p.launch(spec(spot=True))
    arm.evict(info.nodes[0].node_id)
    assert p.query(info) == {info.nodes[0].node_id: PREEMPTED}


@pytest.mark.parametrize("code,http,exc,scope", [
    ("AllocationFailed", None, errors.CapacityError, "zone"),
    ("ZonalAllocationFailed", None, errors.CapacityError, "zone"),
    ("OverconstrainedAllocationRequest", None, errors.CapacityError, "zone"),
    ("SkuNotAvailable", 409, errors.CapacityError, "region"),
    ("QuotaExceeded", 409, errors.QuotaError, None),
    ("AuthorizationFailed", 403, errors.CredentialsError, None),
    ("InvalidParameter", 400, errors.InvalidRequestError, None),
])
def test_vm_create_error_mapping(arm, code, http, exc, scope):
    arm.fail_vm_create(code, http=http)
    with pytest.raises(exc) as ei:
        prov().launch(spec(spot=True))
    assert code in str(ei.value)
    if scope:
        assert ei.value.scope == scope


def test_failed_create_is_replaced_on_relaunch(arm):
    arm.fail_vm_create("AllocationFailed")
    with pytest.raises(errors.CapacityError):
        prov().launch(spec())
    info = prov().launch(spec())
    assert info.nodes[0].state == RUNNING and arm.requests("DELETE", r"/virtualMachines/")


def test_throttling_is_retried(arm):
    arm.fail_vm_create("TooManyRequests", http=429, times=2)
    assert prov().launch(spec()).nodes


def test_open_ports_extends_the_nsg(arm):
    p = prov()
    info = p.launch(spec(ports=["8080"]))
    p.open_ports(info, ["8080", "9000-9100"])
    nsg = arm.requests("PUT", r"/networkSecurityGroups/")[-1]
    assert [r["properties"]["destinationPortRange"] for r in nsg["properties"]["securityRules"]] == [
        "22", "8080", "9000-9100"]


def test_arm_sizes_get_the_arm64_image(arm):
    prov().launch(spec(itype="Standard_D2ps_v5"))
    prov().launch(spec("c2", itype="Standard_D2s_v5"))
    skus = [v["properties"]["storageProfile"]["imageReference"]["sku"]
            for v in arm.requests("PUT", r"/virtualMachines/[^/]+$")]
    assert skus == ["22_04-lts-arm64", "22_04-lts-gen2"]
