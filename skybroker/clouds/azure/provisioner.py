"""Azure provisioner over azure-mgmt-compute/-network/-resource (imported lazily).

Why one resource group per cluster: everything a cluster needs (VNet, NSG, public IPs, NICs,
disks, VMs) lives in `sky-<cluster>-<broker>`, tagged, so teardown is one group delete that
cannot forget a NIC or a disk, and an interrupted launch leaves nothing that a group delete
does not catch. Request bodies are written in the REST shape, so what we send is exactly what
the ARM API documents (and what tests assert).
"""

from __future__ import annotations

import re
import time
from typing import Any

from skybroker import errors
from skybroker.clouds import clients
from skybroker.clouds.azure.errors import call
from skybroker.clouds.base import (
    PENDING,
    PREEMPTED,
    RUNNING,
    STOPPED,
    STOPPING,
    TAG_BROKER,
    TAG_CLUSTER,
    TAG_NODE_RANK,
    TERMINATED,
    ClusterInfo,
    ClusterSpec,
    NodeInfo,
)

POWER = {"PowerState/running": RUNNING, "PowerState/starting": PENDING,
         "PowerState/stopping": STOPPING, "PowerState/deallocating": STOPPING,
         "PowerState/stopped": STOPPED, "PowerState/deallocated": STOPPED}
DEFAULT_IMAGE = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                 "sku": "22_04-lts-gen2", "version": "latest"}
DEFAULT_IMAGE_ARM64 = {**DEFAULT_IMAGE, "sku": "22_04-lts-arm64"}
DEFAULT_SSH_USER = "azureuser"
# Azure size features after the vCPU count: a lowercase 'p' means an Arm (Ampere) CPU
# (Standard_D2ps_v5, Standard_B2pts_v2, Standard_E4pds_v5).
_ARM_SIZE = re.compile(r"^Standard_[A-Z]+\d+(-\d+)?[a-z]*p[a-z]*_v\d", re.ASCII)


def size_arch(vm_size: str) -> str:
    return "arm64" if _ARM_SIZE.match(vm_size) else "x86_64"


def group_name(cluster: str, broker: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.()-]", "-", cluster)
    return f"sky-{base}-{broker}"[:90]


def _json(obj: Any) -> dict:
    """A returned model as REST-shaped JSON, whichever generator made the SDK."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "serialize"):  # msrest (autorest) models
        return obj.serialize(keep_readonly=True)
    if hasattr(obj, "as_dict"):  # typespec models are MutableMappings of REST keys
        return obj.as_dict()
    return dict(obj)


def _zone(spec_zone: str | None) -> str | None:
    """Catalog zones may read 'eastus-1' or '1'; ARM wants '1'."""
    if not spec_zone:
        return None
    tail = str(spec_zone).rsplit("-", 1)[-1]
    return tail if tail.isdigit() else None


def list_tagged_instances(*, cluster_name: str | None = None, broker: str | None = None) -> list[dict]:
    """Every VM of ours in the subscription (via our tagged resource groups), for status --refresh."""
    broker = broker or clients.broker_id()
    rm, cm = clients.azure_client("resource"), clients.azure_client("compute")
    rows = []
    groups = call(rm.resource_groups.list, filter=f"tagName eq '{TAG_BROKER}' and tagValue eq '{broker}'",
                  _where="resourceGroups.list")
    for g in groups:
        g = _json(g)
        tags = g.get("tags") or {}
        if cluster_name and tags.get(TAG_CLUSTER) != cluster_name:
            continue
        for vm in call(cm.virtual_machines.list, g["name"], _where="virtualMachines.list"):
            vm = _json(vm)
            vtags = vm.get("tags") or {}
            rank = str(vtags.get(TAG_NODE_RANK, ""))
            rows.append({"instance_id": vm["name"], "cluster": tags.get(TAG_CLUSTER),
                         "rank": int(rank) if rank.isdigit() else None, "region": vm.get("location"),
                         "zone": (vm.get("zones") or [None])[0], "resource_group": g["name"],
                         "instance_type": vm["properties"]["hardwareProfile"]["vmSize"],
                         "spot": vm["properties"].get("priority") == "Spot", "state": None})
    return rows


class AzureProvisioner:
    """Azure VMs in one resource group per cluster; see `skybroker.clouds.base.Provisioner`."""

    cloud = "azure"

    def __init__(self, poll_s: float = 2.0, timeout_s: float = 900.0) -> None:
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.config = clients.cloud_config("azure")
        self._clients: dict[str, Any] = {}

    def _c(self, kind: str) -> Any:
        if kind not in self._clients:
            self._clients[kind] = clients.azure_client(kind)
        return self._clients[kind]

    def _broker(self, c: ClusterInfo | ClusterSpec) -> str:
        if isinstance(c, ClusterSpec):
            return c.broker_id or clients.broker_id()
        return c.provider_data.get("broker_id") or clients.broker_id()

    def _lro(self, poller: Any, where: str) -> Any:
        return call(poller.result, timeout=self.timeout_s, _where=where)

    # ---- network ----

    def _network(self, spec: ClusterSpec, rg: str, tags: dict[str, str]) -> str:
        """VNet + subnet + NSG (SSH and `ports`); returns the subnet id."""
        net, loc = self._c("network"), spec.region
        rules = [{"name": f"allow-{p.replace('-', 'to')}", "properties": {
            "priority": 1000 + i, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
            "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "*",
            "destinationPortRange": str(p)}} for i, p in enumerate(["22", *spec.ports])]
        nsg = self._lro(call(net.network_security_groups.begin_create_or_update, rg, "sky-nsg",
                             {"location": loc, "tags": tags, "properties": {"securityRules": rules}},
                             _where="networkSecurityGroups"), "networkSecurityGroups")
        vnet = {"location": loc, "tags": tags, "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": "default", "properties": {
                "addressPrefix": "10.0.0.0/20", "networkSecurityGroup": {"id": _json(nsg)["id"]}}}]}}
        self._lro(call(net.virtual_networks.begin_create_or_update, rg, "sky-vnet", vnet,
                       _where="virtualNetworks"), "virtualNetworks")
        return (f"/subscriptions/{clients.azure_subscription()}/resourceGroups/{rg}/providers/"
                f"Microsoft.Network/virtualNetworks/sky-vnet/subnets/default")

    def _nic(self, spec: ClusterSpec, rg: str, name: str, subnet: str, tags: dict[str, str]) -> str:
        net, loc, zone = self._c("network"), spec.region, _zone(spec.zone)
        ip_body: dict[str, Any] = {"location": loc, "tags": tags, "sku": {"name": "Standard"},
                                   "properties": {"publicIPAllocationMethod": "Static"}}
        if zone:
            ip_body["zones"] = [zone]
        ip = self._lro(call(net.public_ip_addresses.begin_create_or_update, rg, f"{name}-ip", ip_body,
                            _where="publicIPAddresses"), "publicIPAddresses")
        nic = self._lro(call(net.network_interfaces.begin_create_or_update, rg, f"{name}-nic", {
            "location": loc, "tags": tags, "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
                "subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic",
                "publicIPAddress": {"id": _json(ip)["id"]}}}]}}, _where="networkInterfaces"),
            "networkInterfaces")
        return _json(nic)["id"]

    def _vm_body(self, spec: ClusterSpec, name: str, nic: str, tags: dict[str, str]) -> dict:
        user = spec.ssh_user or self.config.get("ssh_user") or DEFAULT_SSH_USER
        public = spec.ssh_public_key or clients.ssh_identity()[1]
        image = spec.image_id or self.config.get("image_id")
        image_ref = ({"id": image} if isinstance(image, str) and image.startswith("/")
                     else image if isinstance(image, dict)
                     else DEFAULT_IMAGE_ARM64 if size_arch(spec.instance_type) == "arm64" else DEFAULT_IMAGE)
        props: dict[str, Any] = {
            "hardwareProfile": {"vmSize": spec.instance_type},
            "storageProfile": {"imageReference": image_ref, "osDisk": {
                "createOption": "FromImage", "diskSizeGB": int(spec.disk_size_gb),
                "deleteOption": "Delete", "managedDisk": {"storageAccountType": "StandardSSD_LRS"}}},
            "osProfile": {"computerName": re.sub(r"[^A-Za-z0-9-]", "-", name)[:64], "adminUsername": user, "linuxConfiguration": {
                "disablePasswordAuthentication": True, "ssh": {"publicKeys": [{
                    "path": f"/home/{user}/.ssh/authorized_keys", "keyData": public.strip()}]}}},
            "networkProfile": {"networkInterfaces": [{"id": nic, "properties": {
                "primary": True, "deleteOption": "Delete"}}]},
        }
        if spec.spot:
            props["priority"] = "Spot"
            props["evictionPolicy"] = self.config.get("eviction_policy", "Delete")
            props["billingProfile"] = {"maxPrice": float(self.config.get("spot_max_price", -1))}
        body: dict[str, Any] = {"location": spec.region, "tags": tags, "properties": props}
        zone = _zone(spec.zone)
        if zone:
            body["zones"] = [zone]
        return body

    # ---- the contract ----

    def launch(self, spec: ClusterSpec) -> ClusterInfo:
        broker = self._broker(spec)
        rg = group_name(spec.cluster_name, broker)
        tags = {**spec.tags(), TAG_BROKER: broker}
        call(self._c("resource").resource_groups.create_or_update, rg,
             {"location": spec.region, "tags": tags}, _where="resourceGroups")
        existing = {vm["name"]: vm for vm in self._vms(rg)}
        failed = [n for n, vm in existing.items() if vm["properties"].get("provisioningState") == "Failed"]
        for n in failed:  # a failed create of an earlier attempt: replace it
            self._lro(call(self._c("compute").virtual_machines.begin_delete, rg, n,
                           _where="virtualMachines.delete"), "virtualMachines.delete")
            existing.pop(n)
        subnet = self._network(spec, rg, tags)
        pollers = []
        for rank in range(spec.num_nodes):
            name = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{spec.cluster_name}-{rank}")[:64]
            if name in existing:
                continue
            nic = self._nic(spec, rg, name, subnet, {**tags, TAG_NODE_RANK: str(rank)})
            body = self._vm_body(spec, name, nic, {**tags, TAG_NODE_RANK: str(rank)})
            pollers.append(call(self._c("compute").virtual_machines.begin_create_or_update, rg, name,
                                body, _where="virtualMachines.create"))
        for p in pollers:  # submitted together: nodes allocate in parallel
            self._lro(p, "virtualMachines.create")
        stopped = [vm["name"] for vm in self._vms(rg) if self._power(rg, vm["name"]) == STOPPED]
        for n in stopped:
            self._lro(call(self._c("compute").virtual_machines.begin_start, rg, n,
                           _where="virtualMachines.start"), "virtualMachines.start")
        return self._info(spec, rg, broker)

    def _vms(self, rg: str) -> list[dict]:
        return [_json(v) for v in call(self._c("compute").virtual_machines.list, rg, _ok=(404,),
                                       _where="virtualMachines.list") or []]

    def _power(self, rg: str, name: str) -> str:
        view = call(self._c("compute").virtual_machines.instance_view, rg, name, _ok=(404,),
                    _where="virtualMachines.instanceView")
        if view is None:
            return TERMINATED
        codes = [s.get("code", "") for s in _json(view).get("statuses", [])]
        return next((POWER[c] for c in codes if c in POWER), PENDING)

    def _info(self, s: Any, rg: str, broker: str) -> ClusterInfo:
        net = self._c("network")
        user = getattr(s, "ssh_user", None) or self.config.get("ssh_user") or DEFAULT_SSH_USER
        nodes = []
        for vm in self._vms(rg):
            name = vm["name"]
            nic = _json(call(net.network_interfaces.get, rg, f"{name}-nic", _where="networkInterfaces.get"))
            cfg = nic["properties"]["ipConfigurations"][0]["properties"]
            ip = _json(call(net.public_ip_addresses.get, rg, f"{name}-ip", _where="publicIPAddresses.get"))
            rank = str((vm.get("tags") or {}).get(TAG_NODE_RANK, "0"))
            nodes.append(NodeInfo(node_id=name, rank=int(rank) if rank.isdigit() else 0,
                                  state=self._power(rg, name), internal_ip=cfg.get("privateIPAddress"),
                                  external_ip=ip.get("properties", {}).get("ipAddress"), ssh_user=user,
                                  extra={"resource_group": rg, "zone": (vm.get("zones") or [None])[0]}))
        nodes.sort(key=lambda n: n.rank)
        runtime = clients.finish_nodes("azure", s.cluster_name, nodes)
        return ClusterInfo(s.cluster_name, "azure", s.region, s.zone, s.instance_type, s.spot, nodes,
                           {**runtime, "broker_id": broker, "resource_group": rg})

    def _rg(self, cluster: ClusterInfo) -> str:
        return cluster.provider_data.get("resource_group") or group_name(cluster.cluster_name,
                                                                         self._broker(cluster))

    def query(self, cluster: ClusterInfo) -> dict[str, str]:
        rg = self._rg(cluster)
        alive = call(self._c("resource").resource_groups.check_existence, rg, _where="resourceGroups")
        out = {n.node_id: TERMINATED for n in cluster.nodes}
        if not alive:
            return out
        for vm in self._vms(rg):
            out[vm["name"]] = self._power(rg, vm["name"])
        if cluster.spot:  # evictionPolicy Delete: a VM gone from its live group was evicted
            out = {k: PREEMPTED if v == TERMINATED else v for k, v in out.items()}
        return out

    def _each(self, cluster: ClusterInfo, verb: str) -> None:
        rg, cm = self._rg(cluster), self._c("compute").virtual_machines
        pollers = [call(getattr(cm, f"begin_{verb}"), rg, vm["name"], _where=f"virtualMachines.{verb}")
                   for vm in self._vms(rg)]
        for p in pollers:
            self._lro(p, f"virtualMachines.{verb}")

    def stop(self, cluster: ClusterInfo) -> None:
        """Deallocate (not just power off): a powered-off Azure VM is still billed."""
        if cluster.spot and self.config.get("eviction_policy", "Delete") == "Delete":
            raise errors.NotSupportedError("Azure spot VMs with eviction policy Delete cannot be "
                                           "stopped; use `sky down`.")
        self._each(cluster, "deallocate")

    def start(self, cluster: ClusterInfo) -> ClusterInfo:
        self._each(cluster, "start")
        return self._info(cluster, self._rg(cluster), self._broker(cluster))

    def terminate(self, cluster: ClusterInfo) -> None:
        """Delete the cluster's resource group (everything in it), then verify it is gone."""
        rg, rm = self._rg(cluster), self._c("resource")
        poller = call(rm.resource_groups.begin_delete, rg, _ok=(404,), _where="resourceGroups.delete")
        if poller is not None:
            self._lro(poller, "resourceGroups.delete")
        deadline = time.monotonic() + self.timeout_s
        while call(rm.resource_groups.check_existence, rg, _where="resourceGroups"):
            if time.monotonic() > deadline:
                raise errors.ProvisionError(f"Azure: resource group {rg} still exists after delete")
            time.sleep(self.poll_s)

    def open_ports(self, cluster: ClusterInfo, ports: list[str]) -> None:
        rg, net = self._rg(cluster), self._c("network")
        nsg = _json(call(net.network_security_groups.get, rg, "sky-nsg", _where="networkSecurityGroups"))
        rules = nsg.get("properties", {}).get("securityRules", [])
        have = {r["properties"]["destinationPortRange"] for r in rules}
        for p in ports:
            if str(p) in have:
                continue
            rules.append({"name": f"allow-{str(p).replace('-', 'to')}", "properties": {
                "priority": 1000 + len(rules), "direction": "Inbound", "access": "Allow",
                "protocol": "Tcp", "sourceAddressPrefix": "*", "sourcePortRange": "*",
                "destinationAddressPrefix": "*", "destinationPortRange": str(p)}})
        self._lro(call(net.network_security_groups.begin_create_or_update, rg, "sky-nsg", {
            "location": nsg.get("location"), "tags": nsg.get("tags"),
            "properties": {"securityRules": rules}}, _where="networkSecurityGroups"), "networkSecurityGroups")
