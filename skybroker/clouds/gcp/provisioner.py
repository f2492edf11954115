"""GCP provisioner over google-cloud-compute (REST transport, imported lazily).

Why deterministic instance names (`sky-<cluster>-<broker>-<rank>`): GCE answers a second
insert of a name with 409, so a re-launch after an interruption adopts what exists instead of
doubling it, and labels (cluster, broker id, rank) let refresh/teardown find every node.
"""

from __future__ import annotations

import re
import time
from typing import Any

from skybroker import errors
from skybroker.clouds import clients
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
from skybroker.clouds.gcp.errors import call, map_error

STATE_MAP = {"PROVISIONING": PENDING, "STAGING": PENDING, "RUNNING": RUNNING, "REPAIRING": PENDING,
             "STOPPING": STOPPING, "SUSPENDING": STOPPING, "SUSPENDED": STOPPED,
             "TERMINATED": STOPPED}
DEFAULT_IMAGE = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"
DEFAULT_IMAGE_ARM64 = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts-arm64"
ARM_FAMILIES = ("t2a-", "c4a-", "n4a-")  # Arm (Ampere Altra / Axion) machine families
DEFAULT_SSH_USER = "skybroker"
# catalog accelerator name -> GCE acceleratorType (only for families that attach GPUs)
ACCELERATOR_TYPES = {
    "T4": "nvidia-tesla-t4", "V100": "nvidia-tesla-v100", "P100": "nvidia-tesla-p100",
    "P4": "nvidia-tesla-p4", "K80": "nvidia-tesla-k80", "A100": "nvidia-tesla-a100",
    "A100-80GB": "nvidia-a100-80gb", "L4": "nvidia-l4", "H100": "nvidia-h100-80gb",
}
# families whose GPUs come with the machine type (a2/a3/g2): no guestAccelerators
BUILTIN_GPU_FAMILIES = ("a2-", "a3-", "a4-", "g2-")


def label_value(value: str) -> str:
    """GCE labels: lowercase letters, digits, '-' and '_', at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", str(value).lower())[:63]


def instance_name(cluster: str, broker: str, rank: int) -> str:
    base = re.sub(r"[^a-z0-9-]", "-", cluster.lower()).strip("-") or "c"
    suffix = f"-{broker[:8]}-{rank}"
    return f"sky-{base}"[: 63 - len(suffix)].rstrip("-") + suffix


def _filter(cluster: str | None, broker: str) -> str:
    parts = [f'labels.{TAG_BROKER} = "{label_value(broker)}"']
    if cluster:
        parts.append(f'labels.{TAG_CLUSTER} = "{label_value(cluster)}"')
    return " AND ".join(parts)


def _zone_of(inst: Any) -> str:
    return str(inst.zone).rsplit("/", 1)[-1]


def list_tagged_instances(*, cluster_name: str | None = None, broker: str | None = None) -> list[dict]:
    """Every instance of ours in the project (one aggregated list), for status --refresh."""
    broker = broker or clients.broker_id()
    client = clients.gcp_client("Instances")
    project = clients.gcp_project()
    rows = []
    from google.cloud import compute_v1 as c

    req = c.AggregatedListInstancesRequest(project=project, filter=_filter(cluster_name, broker))
    for _zone, scoped in call(client.aggregated_list, request=req, _where="aggregatedList"):
        for inst in scoped.instances:
            labels = dict(inst.labels)
            rank = labels.get(TAG_NODE_RANK, "")
            rows.append({"instance_id": inst.name, "cluster": labels.get(TAG_CLUSTER),
                         "rank": int(rank) if rank.isdigit() else None, "zone": _zone_of(inst),
                         "region": _zone_of(inst).rsplit("-", 1)[0],
                         "instance_type": str(inst.machine_type).rsplit("/", 1)[-1],
                         "spot": inst.scheduling.provisioning_model == "SPOT",
                         "state": STATE_MAP.get(inst.status, PENDING)})
    return rows


class GCPProvisioner:
    """GCE VMs in one zone per cluster; see `skybroker.clouds.base.Provisioner`."""

    cloud = "gcp"

    def __init__(self, poll_s: float = 2.0, timeout_s: float = 600.0) -> None:
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.config = clients.cloud_config("gcp")
        self._instances: Any = None

    @property
    def instances(self) -> Any:
        if self._instances is None:
            self._instances = clients.gcp_client("Instances")
        return self._instances

    def _broker(self, c: ClusterInfo | ClusterSpec) -> str:
        if isinstance(c, ClusterSpec):
            return c.broker_id or clients.broker_id()
        return c.provider_data.get("broker_id") or clients.broker_id()

    @staticmethod
    def _zone(c: ClusterInfo | ClusterSpec) -> str:
        return c.zone or f"{c.region}-a"

    def _list(self, project: str, zone: str, cluster: str, broker: str) -> list[Any]:
        from google.cloud import compute_v1 as c

        req = c.ListInstancesRequest(project=project, zone=zone, filter=_filter(cluster, broker))
        return list(call(self.instances.list, request=req, _where="instances.list"))

    def _body(self, spec: ClusterSpec, broker: str, rank: int, zone: str) -> Any:
        from google.cloud import compute_v1 as c

        labels = {label_value(k): label_value(v) for k, v in spec.tags().items()}
        labels.update({TAG_BROKER: label_value(broker), TAG_NODE_RANK: str(rank)})
        user = spec.ssh_user or self.config.get("ssh_user") or DEFAULT_SSH_USER
        disk = c.AttachedDisk(boot=True, auto_delete=True, initialize_params=c.AttachedDiskInitializeParams(
            source_image=spec.image_id or self.config.get("image_id") or (
                DEFAULT_IMAGE_ARM64 if spec.instance_type.startswith(ARM_FAMILIES) else DEFAULT_IMAGE),
            disk_size_gb=int(spec.disk_size_gb), disk_type=f"zones/{zone}/diskTypes/pd-balanced",
            labels=labels))
        nic = c.NetworkInterface(network=self.config.get("network", "global/networks/default"),
                                 access_configs=[c.AccessConfig(name="External NAT", type_="ONE_TO_ONE_NAT")])
        sched = c.Scheduling()
        accels = []
        for name, count in (getattr(spec, "accelerators", None) or {}).items():
            if not spec.instance_type.startswith(BUILTIN_GPU_FAMILIES):
                gce = ACCELERATOR_TYPES.get(name, name.lower())
                accels.append(c.AcceleratorConfig(accelerator_count=int(count),
                                                  accelerator_type=f"zones/{zone}/acceleratorTypes/{gce}"))
        if accels or spec.instance_type.startswith(BUILTIN_GPU_FAMILIES):
            sched.on_host_maintenance = "TERMINATE"  # GPUs cannot live-migrate
        if spec.spot:
            sched.provisioning_model = "SPOT"
            sched.instance_termination_action = self.config.get("spot_termination_action", "DELETE")
            sched.automatic_restart = False
            sched.on_host_maintenance = "TERMINATE"
        public = spec.ssh_public_key or clients.ssh_identity()[1]
        meta = [c.Items(key="ssh-keys", value=f"{user}:{public.strip()}")]
        return c.Instance(
            name=instance_name(spec.cluster_name, broker, rank),
            machine_type=f"zones/{zone}/machineTypes/{spec.instance_type}",
            disks=[disk], network_interfaces=[nic], labels=labels, scheduling=sched,
            guest_accelerators=accels, metadata=c.Metadata(items=meta),
            tags=c.Tags(items=[self._net_tag(spec.cluster_name, broker)]),
        )

    @staticmethod
    def _net_tag(cluster: str, broker: str) -> str:
        return instance_name(cluster, broker, 0).rsplit("-", 1)[0]

    def _wait_op(self, op: Any, where: str) -> None:
        call(op.result, timeout=self.timeout_s, _where=where)
        err = getattr(op, "error", None)  # an operation with errors but no HTTP status
        if err is not None and getattr(err, "errors", None):
            from google.api_core import exceptions as gexc

            e = gexc.GoogleAPICallError(err.errors[0].message, errors=list(err.errors))
            raise map_error(e, where=where) or errors.ProvisionError(f"GCP {where}: {e}")

    def _firewall(self, project: str, spec_or_info: Any, broker: str, ports: list[str]) -> None:
        from google.cloud import compute_v1 as c

        fw = clients.gcp_client("Firewalls")
        name = self._net_tag(spec_or_info.cluster_name, broker)
        body = c.Firewall(name=name, network=self.config.get("network", "global/networks/default"),
                          direction="INGRESS", source_ranges=["0.0.0.0/0"],
                          target_tags=[name], description=f"skybroker {spec_or_info.cluster_name}",
                          allowed=[c.Allowed(I_p_protocol="tcp", ports=["22", *ports])])
        op = call(fw.insert, project=project, firewall_resource=body, _where="firewalls.insert",
                  _ok=(409,))
        if op is None:  # exists: allow these ports too, keeping what it allows already
            have = call(fw.get, project=project, firewall=name, _where="firewalls.get")
            old = [p for a in have.allowed for p in a.ports]
            merged = list(dict.fromkeys([*old, "22", *ports]))
            if merged == old:
                return
            body.allowed = [c.Allowed(I_p_protocol="tcp", ports=merged)]
            op = call(fw.patch, project=project, firewall=name, firewall_resource=body,
                      _where="firewalls.patch")
        self._wait_op(op, "firewalls")

    def _info(self, s: Any, insts: list[Any], broker: str, zone: str) -> ClusterInfo:
        user = getattr(s, "ssh_user", None) or self.config.get("ssh_user") or DEFAULT_SSH_USER
        nodes = []
        for inst in insts:
            nic = inst.network_interfaces[0] if inst.network_interfaces else None
            ext = nic.access_configs[0].nat_i_p if nic is not None and nic.access_configs else None
            rank = dict(inst.labels).get(TAG_NODE_RANK, "0")
            nodes.append(NodeInfo(node_id=inst.name, rank=int(rank) if rank.isdigit() else 0,
                                  state=STATE_MAP.get(inst.status, PENDING),
                                  internal_ip=nic.network_i_p if nic is not None else None,
                                  external_ip=ext or None, ssh_user=user, extra={"zone": zone}))
        nodes.sort(key=lambda n: n.rank)
        runtime = clients.finish_nodes("gcp", s.cluster_name, nodes)
        return ClusterInfo(s.cluster_name, "gcp", s.region, zone, s.instance_type, s.spot, nodes,
                           {**runtime, "broker_id": broker, "project": clients.gcp_project()})

    def _wait_running(self, project: str, zone: str, cluster: str, broker: str, expect: int) -> list[Any]:
        deadline = time.monotonic() + self.timeout_s
        while True:
            insts = self._list(project, zone, cluster, broker)
            if len(insts) >= expect and all(i.status == "RUNNING" for i in insts):
                return insts
            if time.monotonic() > deadline:
                raise errors.ProvisionError(f"GCP: {cluster}: {len(insts)}/{expect} nodes, "
                                            f"not all RUNNING after {self.timeout_s:.0f}s")
            time.sleep(self.poll_s)

    # ---- the contract ----

    def launch(self, spec: ClusterSpec) -> ClusterInfo:
        project, zone, broker = clients.gcp_project(), self._zone(spec), self._broker(spec)
        existing = {i.name: i for i in self._list(project, zone, spec.cluster_name, broker)}
        self._firewall(project, spec, broker, list(spec.ports))
        ops = []
        for rank in range(spec.num_nodes):
            name = instance_name(spec.cluster_name, broker, rank)
            inst = existing.get(name)
            if inst is None:
                op = call(self.instances.insert, project=project, zone=zone, _where="instances.insert",
                          _ok=(409,), instance_resource=self._body(spec, broker, rank, zone))
            elif inst.status in ("TERMINATED", "SUSPENDED", "STOPPING"):
                op = call(self.instances.start, project=project, zone=zone, instance=name,
                          _where="instances.start")
            else:
                op = None
            if op is not None:
                ops.append(op)
        for op in ops:  # submit all, then wait: nodes boot in parallel
            self._wait_op(op, "instances.insert")
        insts = self._wait_running(project, zone, spec.cluster_name, broker, spec.num_nodes)
        return self._info(spec, insts, broker, zone)

    def _preempted(self, project: str, zone: str) -> set[str]:
        """Names of instances GCE preempted in this zone (from its preemption operations)."""
        ops = clients.gcp_client("ZoneOperations")
        from google.cloud import compute_v1 as c

        req = c.ListZoneOperationsRequest(project=project, zone=zone,
                                          filter='operationType = "compute.instances.preempted"')
        found = call(ops.list, request=req, _where="zoneOperations.list")
        return {str(o.target_link).rsplit("/", 1)[-1] for o in found}

    def query(self, cluster: ClusterInfo) -> dict[str, str]:
        project, zone, broker = clients.gcp_project(), self._zone(cluster), self._broker(cluster)
        insts = self._list(project, zone, cluster.cluster_name, broker)
        out = {n.node_id: TERMINATED for n in cluster.nodes}
        out.update({i.name: STATE_MAP.get(i.status, PENDING) for i in insts})
        if cluster.spot and any(s in (TERMINATED, STOPPED) for s in out.values()):
            gone = self._preempted(project, zone)
            out = {k: PREEMPTED if v in (TERMINATED, STOPPED) and k in gone else v
                   for k, v in out.items()}
        return out

    def _each(self, cluster: ClusterInfo, verb: str, statuses: tuple[str, ...]) -> list[str]:
        project, zone, broker = clients.gcp_project(), self._zone(cluster), self._broker(cluster)
        names = [i.name for i in self._list(project, zone, cluster.cluster_name, broker)
                 if i.status in statuses]
        ops = [call(getattr(self.instances, verb), project=project, zone=zone, instance=n,
                    _where=f"instances.{verb}", _ok=(404,)) for n in names]
        for op in ops:
            if op is not None:
                self._wait_op(op, f"instances.{verb}")
        return names

    def stop(self, cluster: ClusterInfo) -> None:
        if cluster.spot and self.config.get("spot_termination_action", "DELETE") == "DELETE":
            raise errors.NotSupportedError("GCP spot VMs launched to be deleted on preemption "
                                           "cannot be stopped; use `sky down`.")
        self._each(cluster, "stop", ("RUNNING", "PROVISIONING", "STAGING", "REPAIRING"))
        project, zone, broker = clients.gcp_project(), self._zone(cluster), self._broker(cluster)
        deadline = time.monotonic() + self.timeout_s
        while any(i.status != "TERMINATED" for i in self._list(project, zone, cluster.cluster_name, broker)):
            if time.monotonic() > deadline:
                raise errors.ProvisionError(f"GCP: {cluster.cluster_name} did not stop")
            time.sleep(self.poll_s)

    def start(self, cluster: ClusterInfo) -> ClusterInfo:
        self._each(cluster, "start", ("TERMINATED", "SUSPENDED"))
        project, zone, broker = clients.gcp_project(), self._zone(cluster), self._broker(cluster)
        insts = self._wait_running(project, zone, cluster.cluster_name, broker,
                                   max(1, len(cluster.nodes)))
        return self._info(cluster, insts, broker, zone)

    def terminate(self, cluster: ClusterInfo) -> None:
        """Delete every instance labelled with the cluster, verify, then its firewall rule."""
        project, broker = clients.gcp_project(), self._broker(cluster)
        zones = [cluster.zone] if cluster.zone else sorted(
            {r["zone"] for r in list_tagged_instances(cluster_name=cluster.cluster_name, broker=broker)})
        for zone in zones:
            shell = ClusterInfo(cluster.cluster_name, "gcp", cluster.region, zone,
                                cluster.instance_type, cluster.spot, [], cluster.provider_data)
            self._each(shell, "delete", tuple(STATE_MAP))
            left = self._list(project, zone, cluster.cluster_name, broker)
            if left:
                raise errors.ProvisionError(f"GCP: still present after delete: {[i.name for i in left]}")
        fw = clients.gcp_client("Firewalls")
        op = call(fw.delete, project=project, firewall=self._net_tag(cluster.cluster_name, broker),
                  _where="firewalls.delete", _ok=(404,))
        if op is not None:
            self._wait_op(op, "firewalls.delete")

    def open_ports(self, cluster: ClusterInfo, ports: list[str]) -> None:
        self._firewall(clients.gcp_project(), cluster, self._broker(cluster), ports)
