"""AWS provisioner over boto3 EC2 (imported lazily, through `skybroker.clouds.clients`).

Why it looks up instances by tag instead of trusting what it recorded: a launch can be
interrupted between any two API calls, so every create carries the cluster and broker tags
and every later step (resume, query, terminate) starts from "what does EC2 hold with our
tags", which makes launch idempotent and teardown complete.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from typing import Any

from skybroker import errors
from skybroker.clouds import clients
from skybroker.clouds.aws.errors import call
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

ALIVE = ["pending", "running", "stopping", "stopped", "shutting-down"]
STATE_MAP = {"pending": PENDING, "running": RUNNING, "stopping": STOPPING, "stopped": STOPPED,
             "shutting-down": STOPPING, "terminated": TERMINATED}
SPOT_REASONS = ("Server.SpotInstanceTermination", "Server.SpotInstanceShutdown")
DEFAULT_SSH_USER = "ubuntu"
# Canonical's Ubuntu 22.04 image via SSM, else the newest Canonical image by name.
UBUNTU_SSM = "/aws/service/canonical/ubuntu/server/22.04/stable/current/{arch}/hvm/ebs-gp2/ami-id"
DLAMI_SSM = "/aws/service/deeplearning/ami/{arch}/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
CANONICAL = "099720109477"
_AMI_CACHE: dict[tuple[str, str, bool], tuple[str, str]] = {}
# Graviton families carry a 'g' right after the generation digit (m7g, c6gn, x2gd, g5g, t4g).
_GRAVITON = re.compile(r"^(a1|[a-z]+\d+g[a-z-]*)\.")


def instance_arch(instance_type: str) -> str:
    """'arm64' for Graviton instance types, else 'x86_64' (no API call needed)."""
    return "arm64" if _GRAVITON.match(instance_type) else "x86_64"


def node_state(inst: dict) -> str:
    """Our node state for an EC2 instance; spot interruptions read as PREEMPTED."""
    state = STATE_MAP.get(inst["State"]["Name"], PENDING)
    reason = (inst.get("StateReason") or {}).get("Code", "")
    if state in (TERMINATED, STOPPED, STOPPING) and reason in SPOT_REASONS:
        return PREEMPTED
    return state


def _tags(inst: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in tags.items()]


def describe_tagged(ec2: Any, *, cluster_name: str | None = None, broker: str | None = None,
                    states: list[str] | None = None) -> list[dict]:
    """Instances carrying our tags (`broker='*'` = any broker), paginated."""
    filters = [{"Name": f"tag:{TAG_BROKER}", "Values": [broker]} if broker and broker != "*"
               else {"Name": "tag-key", "Values": [TAG_BROKER]}]
    if cluster_name:
        filters.append({"Name": f"tag:{TAG_CLUSTER}", "Values": [cluster_name]})
    if states:
        filters.append({"Name": "instance-state-name", "Values": states})
    out: list[dict] = []
    kwargs: dict[str, Any] = {"Filters": filters}
    while True:
        resp = call(ec2.describe_instances, _where="DescribeInstances", **kwargs)
        for r in resp.get("Reservations", []):
            out.extend(r.get("Instances", []))
        if not resp.get("NextToken"):
            return out
        kwargs["NextToken"] = resp["NextToken"]


def list_tagged_instances(regions: list[str] | None = None, *, cluster_name: str | None = None,
                          broker: str | None = None, include_terminated: bool = False) -> list[dict]:
    """Every instance of ours (this broker by default) in `regions`, for status --refresh.

    Each row: instance_id, cluster, rank, region, zone, instance_type, spot, state (ours).
    `regions=None` asks EC2 for the account's enabled regions (one call per region).
    """
    broker = broker or clients.broker_id()
    if regions is None:
        ec2 = clients.aws_client("ec2", "us-east-1")
        regions = [r["RegionName"] for r in call(ec2.describe_regions)["Regions"]]
    rows = []
    for region in regions:
        ec2 = clients.aws_client("ec2", region)
        states = None if include_terminated else ALIVE
        for inst in describe_tagged(ec2, cluster_name=cluster_name, broker=broker, states=states):
            tags = _tags(inst)
            rows.append({
                "instance_id": inst["InstanceId"], "cluster": tags.get(TAG_CLUSTER),
                "rank": int(tags[TAG_NODE_RANK]) if tags.get(TAG_NODE_RANK, "").isdigit() else None,
                "region": region, "zone": inst.get("Placement", {}).get("AvailabilityZone"),
                "instance_type": inst.get("InstanceType"),
                "spot": inst.get("InstanceLifecycle") == "spot", "state": node_state(inst),
            })
    return rows


def _death_error(cluster: str, inst: dict) -> errors.ProvisionError:
    """Why a node died while launching: spot reclaim / no capacity -> CapacityError."""
    reason = inst.get("StateReason") or {}
    code, msg = reason.get("Code", ""), reason.get("Message", "")
    text = f"AWS: node {inst['InstanceId']} of {cluster} died while launching: {code} {msg}".strip()
    if code in SPOT_REASONS or "InsufficientInstanceCapacity" in code:
        return errors.CapacityError(text, scope="zone")
    if "LimitExceeded" in code:
        return errors.QuotaError(text)
    return errors.ProvisionError(text)


class AWSProvisioner:
    """EC2 instances in one region per cluster; see `skybroker.clouds.base.Provisioner`."""

    cloud = "aws"

    def __init__(self, poll_s: float = 2.0, timeout_s: float = 600.0) -> None:
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.config = clients.cloud_config("aws")

    # ---- helpers ----

    def _ec2(self, region: str) -> Any:
        return clients.aws_client("ec2", region)

    def _broker(self, cluster: ClusterInfo | ClusterSpec) -> str:
        if isinstance(cluster, ClusterSpec):
            return cluster.broker_id or clients.broker_id()
        return cluster.provider_data.get("broker_id") or clients.broker_id()

    def _image(self, ec2: Any, spec: ClusterSpec) -> tuple[str, str]:
        """(ami id, root device name): the task's image, config, else a default per region,
        architecture (Graviton types need arm64) and GPU-ness (NVIDIA drivers preinstalled)."""
        image = spec.image_id or self.config.get("image_id")
        if isinstance(image, dict):
            image = image.get(spec.region)
        if image and not str(image).startswith("ami-"):
            raise errors.InvalidRequestError(f"AWS image_id {image!r} is not an AMI id (ami-...)")
        if image:
            imgs = call(ec2.describe_images, ImageIds=[image], _where="DescribeImages")["Images"]
            return str(image), (imgs[0].get("RootDeviceName") if imgs else None) or "/dev/sda1"
        arch = instance_arch(spec.instance_type)
        gpu = bool(spec.accelerators)
        key = (spec.region, arch, gpu)
        if key not in _AMI_CACHE:
            _AMI_CACHE[key] = self._default_image(ec2, spec.region, arch, gpu)
        return _AMI_CACHE[key]

    def _default_image(self, ec2: Any, region: str, arch: str, gpu: bool) -> tuple[str, str]:
        ssm = clients.aws_client("ssm", region)
        deb = "amd64" if arch == "x86_64" else "arm64"
        names = ([DLAMI_SSM.format(arch=arch)] if gpu else []) + [UBUNTU_SSM.format(arch=deb)]
        image = next((i for i in map(lambda n: self._ssm_image(ssm, n), names) if i), None)
        if image:
            imgs = call(ec2.describe_images, ImageIds=[image], _where="DescribeImages")["Images"]
        else:
            imgs = call(ec2.describe_images, Owners=[CANONICAL], _where="DescribeImages", Filters=[
                {"Name": "name", "Values": [f"ubuntu/images/*ubuntu-*-{deb}-server-*"]},
                {"Name": "state", "Values": ["available"]}])["Images"]
            imgs.sort(key=lambda i: (i.get("CreationDate") or "", i.get("Name") or ""), reverse=True)
            if not imgs:
                raise errors.ProvisionError(f"AWS {region}: no Ubuntu {deb} image found; "
                                            "set aws.image_id in config.yaml")
            image = imgs[0]["ImageId"]
        return str(image), (imgs[0].get("RootDeviceName") if imgs else None) or "/dev/sda1"

    @staticmethod
    def _ssm_image(ssm: Any, name: str) -> str | None:
        try:
            return ssm.get_parameter(Name=name)["Parameter"]["Value"]
        except Exception:  # ParameterNotFound, no SSM permission: fall back to DescribeImages
            return None

    def _key_pair(self, ec2: Any, spec: ClusterSpec, broker: str) -> str:
        public = spec.ssh_public_key or clients.ssh_identity()[1]
        digest = hashlib.sha1(public.strip().encode()).hexdigest()[:10]
        name = f"skybroker-{broker}-{digest}"
        call(ec2.import_key_pair, _where="ImportKeyPair", _ok={"InvalidKeyPair.Duplicate"},
             KeyName=name, PublicKeyMaterial=public.encode(),
             TagSpecifications=[{"ResourceType": "key-pair", "Tags": _tag_list({TAG_BROKER: broker})}])
        return name

    def _vpc_subnet(self, ec2: Any, zone: str | None) -> tuple[str, str | None]:
        vpc = self.config.get("vpc_id")
        if not vpc:
            vpcs = call(ec2.describe_vpcs, _where="DescribeVpcs",
                        Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
            if not vpcs:
                raise errors.InvalidRequestError("AWS: no default VPC; set aws.vpc_id in config.yaml")
            vpc = vpcs[0]["VpcId"]
        if not zone:
            return vpc, None
        subnets = call(ec2.describe_subnets, _where="DescribeSubnets", Filters=[
            {"Name": "vpc-id", "Values": [vpc]}, {"Name": "availability-zone", "Values": [zone]}])
        subnets = sorted(subnets["Subnets"], key=lambda s: not s.get("DefaultForAz"))
        if not subnets:
            raise errors.CapacityError(f"AWS: no subnet in zone {zone} of {vpc}", scope="zone")
        return vpc, subnets[0]["SubnetId"]

    def _security_group(self, ec2: Any, cluster: str, broker: str, vpc: str) -> str:
        name = f"skybroker-{cluster}-{broker}"
        found = call(ec2.describe_security_groups, _where="DescribeSecurityGroups", Filters=[
            {"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc]}])
        if found["SecurityGroups"]:
            return found["SecurityGroups"][0]["GroupId"]
        tags = _tag_list({TAG_CLUSTER: cluster, TAG_BROKER: broker})
        made = call(ec2.create_security_group, _where="CreateSecurityGroup",
                    _ok={"InvalidGroup.Duplicate"}, GroupName=name, VpcId=vpc,
                    Description=f"skybroker cluster {cluster}",
                    TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])
        if made is None:  # a concurrent launch created it
            return self._security_group(ec2, cluster, broker, vpc)
        return made["GroupId"]

    @staticmethod
    def _authorize(ec2: Any, sg: str, ports: list[str]) -> None:
        perms = []
        for p in ports:
            lo, _, hi = str(p).partition("-")
            perms.append({"IpProtocol": "tcp", "FromPort": int(lo), "ToPort": int(hi or lo),
                          "IpRanges": [{"CidrIp": "0.0.0.0/0"}]})
        for perm in perms:
            call(ec2.authorize_security_group_ingress, _where="AuthorizeSecurityGroupIngress",
                 _ok={"InvalidPermission.Duplicate"}, GroupId=sg, IpPermissions=[perm])

    def _run(self, ec2: Any, spec: ClusterSpec, broker: str, count: int) -> list[str]:
        image, root = self._image(ec2, spec)
        key = self._key_pair(ec2, spec, broker)
        vpc, subnet = self._vpc_subnet(ec2, spec.zone)
        sg = self._security_group(ec2, spec.cluster_name, broker, vpc)
        # SSH every time: an interrupted launch may have left the group without its rule
        self._authorize(ec2, sg, ["22", *spec.ports])
        tags = _tag_list({**spec.tags(), TAG_BROKER: broker, "Name": spec.cluster_name})
        kwargs: dict[str, Any] = {
            "ImageId": image, "InstanceType": spec.instance_type,
            "MinCount": count, "MaxCount": count,  # all or nothing: a partial gang is useless
            "BlockDeviceMappings": [{"DeviceName": root, "Ebs": {
                "VolumeSize": int(spec.disk_size_gb), "VolumeType": "gp3",
                "DeleteOnTermination": True}}],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags},
                                  {"ResourceType": "volume", "Tags": tags}],
            "ClientToken": f"{spec.cluster_name[:30]}-{uuid.uuid4().hex[:16]}",
        }
        if spec.zone:
            kwargs["Placement"] = {"AvailabilityZone": spec.zone}
        if subnet:
            kwargs["NetworkInterfaces"] = [{"DeviceIndex": 0, "SubnetId": subnet, "Groups": [sg],
                                            "AssociatePublicIpAddress": True}]
        else:
            kwargs["SecurityGroupIds"] = [sg]
        kwargs["KeyName"] = key
        if spec.spot:
            kwargs["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {
                "SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}}
        resp = call(ec2.run_instances, _where="RunInstances", **kwargs)
        return [i["InstanceId"] for i in resp["Instances"]]

    def _rank(self, ec2: Any, instances: list[dict]) -> dict[str, int]:
        """Stable ranks: keep tagged ones, give untagged ones the free ranks in launch order."""
        ranks = {i["InstanceId"]: int(_tags(i)[TAG_NODE_RANK]) for i in instances
                 if _tags(i).get(TAG_NODE_RANK, "").isdigit()}
        free = (r for r in range(len(instances) * 2) if r not in ranks.values())
        untagged = sorted((i for i in instances if i["InstanceId"] not in ranks),
                          key=lambda i: (str(i.get("LaunchTime", "")), i.get("AmiLaunchIndex", 0)))
        for inst in untagged:
            r = next(free)
            ranks[inst["InstanceId"]] = r
            call(ec2.create_tags, _where="CreateTags", Resources=[inst["InstanceId"]],
                 Tags=[{"Key": TAG_NODE_RANK, "Value": str(r)}])
        return ranks

    def _wait_running(self, ec2: Any, cluster: str, broker: str, expect: int,
                      watch: set[str] = frozenset()) -> list[dict]:
        """Poll until `expect` of our instances run; one of `watch` (just launched or
        started) dying on the way is a failed attempt, typed by its state reason."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            every = describe_tagged(ec2, cluster_name=cluster, broker=broker)
            insts = [i for i in every if i["State"]["Name"] in ALIVE]
            dead = [i for i in every if i["InstanceId"] in watch
                    and i["State"]["Name"] in ("terminated", "shutting-down")]
            if dead:
                raise _death_error(cluster, dead[0])
            if len(insts) >= expect and all(i["State"]["Name"] == "running" for i in insts):
                return insts
            if time.monotonic() > deadline:
                states = sorted(i["State"]["Name"] for i in insts)
                raise errors.ProvisionError(
                    f"AWS: {cluster}: {len(insts)}/{expect} nodes alive, not all running after "
                    f"{self.timeout_s:.0f}s ({states})")
            time.sleep(self.poll_s)

    def _info(self, spec_or_info: Any, insts: list[dict], ranks: dict[str, int], broker: str,
              sg: str | None = None) -> ClusterInfo:
        s = spec_or_info
        user = getattr(s, "ssh_user", None) or self.config.get("ssh_user") or DEFAULT_SSH_USER
        nodes = [NodeInfo(
            node_id=i["InstanceId"], rank=ranks.get(i["InstanceId"], 0), state=node_state(i),
            internal_ip=i.get("PrivateIpAddress"), external_ip=i.get("PublicIpAddress"),
            ssh_user=user, extra={"zone": i.get("Placement", {}).get("AvailabilityZone")},
        ) for i in insts]
        nodes.sort(key=lambda n: n.rank)
        runtime = clients.finish_nodes("aws", s.cluster_name, nodes)
        zone = nodes[0].extra.get("zone") if nodes else s.zone
        return ClusterInfo(s.cluster_name, "aws", s.region, s.zone or zone, s.instance_type,
                           s.spot, nodes, {**runtime, "broker_id": broker,
                                           **({"security_group": sg} if sg else {})})

    # ---- the contract ----

    def launch(self, spec: ClusterSpec) -> ClusterInfo:
        ec2 = self._ec2(spec.region)
        broker = self._broker(spec)
        existing = describe_tagged(ec2, cluster_name=spec.cluster_name, broker=broker, states=ALIVE)
        stopped = [i["InstanceId"] for i in existing if i["State"]["Name"] in ("stopped", "stopping")]
        if stopped:
            self._wait_states(ec2, stopped, {"stopped"})
            call(ec2.start_instances, _where="StartInstances", InstanceIds=stopped)
        missing = spec.num_nodes - len(existing)
        new = self._run(ec2, spec, broker, missing) if missing > 0 else []
        insts = self._wait_running(ec2, spec.cluster_name, broker, spec.num_nodes,
                                   set(new) | set(stopped))
        ranks = self._rank(ec2, insts)
        return self._info(spec, insts, ranks, broker)

    def _wait_states(self, ec2: Any, ids: list[str], states: set[str]) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            resp = call(ec2.describe_instances, _where="DescribeInstances", InstanceIds=ids)
            now = [i["State"]["Name"] for r in resp["Reservations"] for i in r["Instances"]]
            if all(s in states for s in now):
                return
            if time.monotonic() > deadline:
                raise errors.ProvisionError(f"AWS: {ids} not in {sorted(states)} ({now})")
            time.sleep(self.poll_s)

    def query(self, cluster: ClusterInfo) -> dict[str, str]:
        ec2 = self._ec2(cluster.region)
        insts = describe_tagged(ec2, cluster_name=cluster.cluster_name, broker=self._broker(cluster))
        out = {n.node_id: TERMINATED for n in cluster.nodes}
        for i in insts:  # a terminated instance stays visible for ~1h; a live one wins
            st = node_state(i)
            if out.get(i["InstanceId"]) in (None, TERMINATED, PREEMPTED) or st not in (TERMINATED, PREEMPTED):
                out[i["InstanceId"]] = st
        return out

    def stop(self, cluster: ClusterInfo) -> None:
        if cluster.spot:
            raise errors.NotSupportedError("AWS spot instances cannot be stopped; use `sky down`.")
        ec2 = self._ec2(cluster.region)
        insts = describe_tagged(ec2, cluster_name=cluster.cluster_name,
                                broker=self._broker(cluster), states=ALIVE)
        ids = [i["InstanceId"] for i in insts]
        if ids:
            call(ec2.stop_instances, _where="StopInstances", InstanceIds=ids)
            self._wait_states(ec2, ids, {"stopped"})

    def start(self, cluster: ClusterInfo) -> ClusterInfo:
        ec2 = self._ec2(cluster.region)
        broker = self._broker(cluster)
        insts = describe_tagged(ec2, cluster_name=cluster.cluster_name, broker=broker, states=ALIVE)
        ids = [i["InstanceId"] for i in insts if i["State"]["Name"] != "running"]
        if not insts:
            raise errors.ClusterNotFoundError(f"AWS: no instances of {cluster.cluster_name} left")
        if ids:
            self._wait_states(ec2, ids, {"stopped", "running"})
            call(ec2.start_instances, _where="StartInstances", InstanceIds=ids)
        insts = self._wait_running(ec2, cluster.cluster_name, broker, len(insts), set(ids))
        return self._info(cluster, insts, self._rank(ec2, insts), broker)

    def terminate(self, cluster: ClusterInfo) -> None:
        """Terminate every instance tagged with the cluster, verify, then drop its security group."""
        ec2 = self._ec2(cluster.region)
        broker = self._broker(cluster)
        deadline = time.monotonic() + self.timeout_s
        while True:
            alive = describe_tagged(ec2, cluster_name=cluster.cluster_name, broker=broker, states=ALIVE)
            pending = [i["InstanceId"] for i in alive if i["State"]["Name"] != "shutting-down"]
            if pending:
                call(ec2.terminate_instances, _where="TerminateInstances", InstanceIds=pending)
            elif not alive:
                break
            if time.monotonic() > deadline:
                raise errors.ProvisionError(
                    f"AWS: instances of {cluster.cluster_name} still alive after terminate: "
                    f"{[i['InstanceId'] for i in alive]}")
            time.sleep(self.poll_s if not pending else 0)
        self._delete_security_group(ec2, cluster.cluster_name, broker)

    def _delete_security_group(self, ec2: Any, cluster: str, broker: str) -> None:
        groups = call(ec2.describe_security_groups, _where="DescribeSecurityGroups", Filters=[
            {"Name": f"tag:{TAG_CLUSTER}", "Values": [cluster]},
            {"Name": f"tag:{TAG_BROKER}", "Values": [broker]}])["SecurityGroups"]
        for g in groups:
            for _ in range(5):  # DependencyViolation until ENIs of dead instances are gone
                try:
                    call(ec2.delete_security_group, _where="DeleteSecurityGroup",
                         _ok={"InvalidGroup.NotFound"}, GroupId=g["GroupId"])
                    break
                except errors.ProvisionError as e:
                    if getattr(e, "code", "") != "DependencyViolation":
                        raise
                    time.sleep(self.poll_s)

    def open_ports(self, cluster: ClusterInfo, ports: list[str]) -> None:
        ec2 = self._ec2(cluster.region)
        broker = self._broker(cluster)
        vpc, _ = self._vpc_subnet(ec2, None)
        self._authorize(ec2, self._security_group(ec2, cluster.cluster_name, broker, vpc), ports)


def reconcile(cluster_name: str, region: str) -> ClusterInfo | None:
    """Rebuild a ClusterInfo from what EC2 holds with our tags (None when nothing is alive)."""
    ec2 = clients.aws_client("ec2", region)
    broker = clients.broker_id()
    insts = describe_tagged(ec2, cluster_name=cluster_name, broker=broker, states=ALIVE)
    if not insts:
        return None
    first = insts[0]
    ranks = {i["InstanceId"]: int(_tags(i).get(TAG_NODE_RANK, "0") or 0) for i in insts}
    shell = ClusterInfo(cluster_name, "aws", region, None, first.get("InstanceType", ""),
                        first.get("InstanceLifecycle") == "spot")
    return AWSProvisioner()._info(shell, insts, ranks, broker)
