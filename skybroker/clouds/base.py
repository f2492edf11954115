"""The provisioner contract: plain dataclasses between the cloud-agnostic layers and a cloud.

A provisioner launches, queries, stops, starts and terminates the nodes of one cluster in one
placement. It raises the typed errors of `skybroker.errors` (CapacityError(scope), QuotaError,
CredentialsError, InvalidRequestError) and retries throttling itself; the failover loop above it
(`skybroker.core.failover`) walks the plan and knows nothing about any cloud.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

# Node states as every provisioner reports them.
PENDING, RUNNING, STOPPING, STOPPED, TERMINATED, PREEMPTED, UNREACHABLE = (
    "PENDING", "RUNNING", "STOPPING", "STOPPED", "TERMINATED", "PREEMPTED", "UNREACHABLE",
)
# UNREACHABLE: the node should be up but cannot be reached (an ssh host that went away).
NODE_STATES = (PENDING, RUNNING, STOPPING, STOPPED, TERMINATED, PREEMPTED, UNREACHABLE)

# Tag/label keys carried by every resource we create (so crashes can be reconciled).
TAG_CLUSTER = "skybroker-cluster"
TAG_BROKER = "skybroker-id"
TAG_NODE_RANK = "skybroker-node-rank"


@dataclass
class ClusterSpec:
    """What to launch: the cluster, its placement, and the task's node-level requirements."""

    cluster_name: str
    cloud: str
    region: str
    zone: str | None
    instance_type: str
    spot: bool
    num_nodes: int = 1
    disk_size_gb: int = 256
    image_id: str | None = None
    ports: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    ssh_public_key: str | None = None
    ssh_user: str | None = None
    broker_id: str = ""
    # accelerator name -> count per node (GCP attaches N1 GPUs as guestAccelerators)
    accelerators: dict[str, int] = field(default_factory=dict)

    def tags(self) -> dict[str, str]:
        """Tags every created resource carries: user labels plus the cluster and broker ids."""
        return {**self.labels, TAG_CLUSTER: self.cluster_name, TAG_BROKER: self.broker_id}


@dataclass
class NodeInfo:
    """One node of a cluster as the cloud reports it. Rank 0 is the head."""

    node_id: str
    rank: int
    state: str = PENDING
    internal_ip: str | None = None
    external_ip: str | None = None
    ssh_port: int = 22
    ssh_user: str | None = None
    # Provider-specific facts worth keeping (JSON-serialisable only).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClusterInfo:
    """A launched cluster: where it runs and its nodes. Stored as JSON in the state DB."""

    cluster_name: str
    cloud: str
    region: str
    zone: str | None
    instance_type: str
    spot: bool
    nodes: list[NodeInfo] = field(default_factory=list)
    provider_data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterInfo:
        data = dict(data)
        data["nodes"] = [NodeInfo(**n) for n in data.get("nodes", [])]
        return cls(**data)

    @property
    def head(self) -> NodeInfo:
        return min(self.nodes, key=lambda n: n.rank)


class Provisioner(Protocol):
    """What each cloud implements. All methods are idempotent where the cloud allows."""

    cloud: str

    def launch(self, spec: ClusterSpec) -> ClusterInfo:
        """Create (or resume) the cluster's nodes and wait until they are RUNNING."""

    def query(self, cluster: ClusterInfo) -> dict[str, str]:
        """node_id -> state, from the cloud (a preempted spot node reports PREEMPTED)."""

    def stop(self, cluster: ClusterInfo) -> None: ...

    def start(self, cluster: ClusterInfo) -> ClusterInfo: ...

    def terminate(self, cluster: ClusterInfo) -> None:
        """Terminate every node tagged with the cluster, and verify none is left."""

    def open_ports(self, cluster: ClusterInfo, ports: list[str]) -> None: ...
