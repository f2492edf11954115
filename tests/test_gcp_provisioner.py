"""GCPProvisioner: google-cloud-compute over real HTTP against the GCE REST stub."""

from __future__ import annotations

import pytest

from skybroker import errors
from skybroker.clouds import clients
from skybroker.clouds.base import (
    PREEMPTED,
    RUNNING,
    STOPPED,
    TAG_BROKER,
    TAG_CLUSTER,
    ClusterInfo,
    ClusterSpec,
)
from skybroker.clouds.gcp.provisioner import GCPProvisioner, list_tagged_instances

pytest_plugins = ["stubs.gcp_fixtures"]


def spec(name="c1", zone="us-central1-a", itype="n1-standard-8", spot=False, n=1, **kw):
    return ClusterSpec(name, "gcp", zone.rsplit("-", 1)[0], zone, itype, spot, n,
                       broker_id=clients.broker_id(), ssh_public_key="ssh-ed25519 AAAA t@x", **kw)


def prov():
    return GCPProvisioner(poll_s=0.001, timeout_s=5)


def test_spot_insert_sends_exact_scheduling_accelerators_disk_labels_network(gce):
    info = prov().launch(spec(spot=True, n=2, accelerators={"T4": 2}, disk_size_gb=120,
                              labels={"Team": "ML"}, ports=["8080"]))
    bodies = gce.requests("POST", r"/zones/us-central1-a/instances$")
    assert len(bodies) == 2
    b = bodies[0]
    assert b["scheduling"] == {"provisioningModel": "SPOT", "instanceTerminationAction": "DELETE",
                               "automaticRestart": False, "onHostMaintenance": "TERMINATE"}
    assert b["guestAccelerators"] == [{"acceleratorCount": 2, "acceleratorType":
                                       "zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4"}]
    assert b["machineType"] == "zones/us-central1-a/machineTypes/n1-standard-8"
    disk = b["disks"][0]
    assert disk["boot"] and disk["autoDelete"] and disk["initializeParams"]["diskSizeGb"] == "120"
    assert b["networkInterfaces"][0]["accessConfigs"][0]["type"] == "ONE_TO_ONE_NAT"
    assert b["labels"][TAG_CLUSTER] == "c1" and b["labels"][TAG_BROKER] == clients.broker_id()
    assert b["labels"]["team"] == "ml"
    assert b["metadata"]["items"][0]["value"].startswith("skybroker:ssh-ed25519")
    fw = gce.requests("POST", r"/global/firewalls$")[0]
    assert fw["allowed"] == [{"IPProtocol": "tcp", "ports": ["22", "8080"]}]
    assert fw["targetTags"] == b["tags"]["items"]
    assert [n.rank for n in info.nodes] == [0, 1] and all(n.state == RUNNING for n in info.nodes)
    assert all(n.external_ip and n.internal_ip for n in info.nodes)


def test_on_demand_has_no_spot_fields_and_builtin_gpu_family_has_no_accelerators(gce):
    prov().launch(spec(itype="a2-highgpu-1g", accelerators={"A100": 1}))
    b = gce.requests("POST", r"/instances$")[0]
    assert "provisioningModel" not in b.get("scheduling", {})
    assert b["scheduling"] == {"onHostMaintenance": "TERMINATE"}
    assert "guestAccelerators" not in b


def test_relaunch_adopts_existing_nodes(gce):
    p = prov()
    a = p.launch(spec(n=2))
    b = p.launch(spec(n=2))
    assert len(gce.requests("POST", r"/instances$")) == 2
    assert [n.node_id for n in a.nodes] == [n.node_id for n in b.nodes]


def test_stop_start_terminate_and_list(gce):
    p = prov()
    info = p.launch(spec(n=2))
    assert len(list_tagged_instances()) == 2
    p.stop(info)
    assert set(p.query(info).values()) == {STOPPED}
    info = p.start(info)
    assert set(p.query(info).values()) == {RUNNING}
    p.terminate(ClusterInfo("c1", "gcp", "us-central1", None, "", False))  # zone unknown: aggregated
    assert list_tagged_instances() == [] and not gce.firewalls
    assert set(p.query(info).values()) == {"TERMINATED"}


def test_spot_preemption_reads_as_preempted(gce):
    p = prov()
    info = p.launch(spec(spot=True))
    gce.preempt("us-central1-a", info.nodes[0].node_id)
    assert p.query(info) == {info.nodes[0].node_id: PREEMPTED}


@pytest.mark.parametrize("code,http,exc", [
    ("ZONE_RESOURCE_POOL_EXHAUSTED", None, errors.CapacityError),
    ("ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", None, errors.CapacityError),
    ("STOCKOUT", None, errors.CapacityError),
    ("QUOTA_EXCEEDED", None, errors.QuotaError),
    ("quotaExceeded", 403, errors.QuotaError),
    ("forbidden", 403, errors.CredentialsError),
    ("invalid", 400, errors.InvalidRequestError),
])
def test_insert_error_mapping(gce, code, http, exc):
    gce.fail_insert(code, http=http)
    with pytest.raises(exc):
        prov().launch(spec(spot=True))


def test_machine_type_missing_in_zone_is_zone_capacity(gce):
    gce.fail_insert("notFound", http=404, message="The resource 'zones/us-central1-f/machineTypes/a3-highgpu-8g' was not found")
    with pytest.raises(errors.CapacityError) as ei:
        prov().launch(spec())
    assert ei.value.scope == "zone"


def test_rate_limit_is_retried(gce):
    gce.fail_insert("rateLimitExceeded", http=403, times=2)
    info = prov().launch(spec())
    assert info.nodes and len(gce.requests("POST", r"/instances$")) == 3


def test_no_adc_and_no_endpoint_is_a_credentials_error(gce, monkeypatch):
    monkeypatch.delenv("SKYBROKER_GCP_ENDPOINT")
    with pytest.raises(errors.CredentialsError):
        prov().launch(spec())


def test_open_ports_patches_the_cluster_firewall(gce):
    p = prov()
    info = p.launch(spec(ports=["8080"]))
    p.open_ports(info, ["9000-9100"])
    p.open_ports(info, ["8080"])  # nothing new: no patch
    (fw,) = gce.firewalls.values()
    assert fw["allowed"] == [{"IPProtocol": "tcp", "ports": ["22", "8080", "9000-9100"]}]
    assert len(gce.requests("PATCH", r"/firewalls/")) == 1


def test_arm_machine_types_get_the_arm64_image(gce):
    prov().launch(spec(itype="t2a-standard-4"))
    prov().launch(spec("c2", itype="n2-standard-4"))
    images = [b["disks"][0]["initializeParams"]["sourceImage"] for b in gce.requests("POST", r"/instances$")]
    assert images[0].endswith("ubuntu-2204-lts-arm64") and images[1].endswith("ubuntu-2204-lts")


def test_catalog_architectures_agree_with_the_image_choice():
    """Every shipped instance type: the provisioners' arch guess equals the catalog's arch."""
    import csv
    from pathlib import Path

    from skybroker.clouds.aws.provisioner import instance_arch
    from skybroker.clouds.azure.provisioner import size_arch
    from skybroker.clouds.gcp.provisioner import ARM_FAMILIES

    guess = {"aws": instance_arch, "azure": size_arch,
             "gcp": lambda t: "arm64" if t.startswith(ARM_FAMILIES) else "x86_64"}
    root = Path(__file__).resolve().parent.parent / "catalogs"
    for cloud, f in guess.items():
        text = (root / f"{cloud}.csv").read_text().splitlines()
        rows = {(r["instance_type"], r["arch"]) for r in csv.DictReader(text)}
        assert [t for t, a in rows if (f(t) == "arm64") != (a in ("arm64", "aarch64"))] == [], cloud
