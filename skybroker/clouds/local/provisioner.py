"""LocalProvisioner: a cluster whose nodes are directories under `<home>/local_nodes/<cluster>/`.

Why a real provisioner and not a shortcut: the `local` cloud goes through the same plan,
failover, state and runtime as any cloud, so a laptop run exercises the whole broker. A node is
`<home>/local_nodes/<cluster>/<rank>/` (also the node's $HOME), with a loopback address
127.0.0.<rank+1>. Every process started on a node carries SKYBROKER_NODE_TAG in its
environment; stop/terminate kill by that tag (descendants included) and verify none is left.

Quota emulation: config `local.quota` (`vcpus`, `spot_vcpus`) caps the vCPUs one launch may ask
for, per market; a larger request is refused with a real QuotaError, as a cloud refuses a
request above the account's limit (for rehearsing what the broker does then).

Spot emulation hook (issue 6): `LocalProvisioner.market`, when set, is asked before a spot
launch whether the zone has capacity (a refusal is a real CapacityError), and its `preempted()`
answer makes `query` report PREEMPTED nodes.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Protocol

from skybroker.clouds.base import (
    PREEMPTED,
    RUNNING,
    STOPPED,
    TERMINATED,
    ClusterInfo,
    ClusterSpec,
    NodeInfo,
)
from skybroker.errors import CapacityError, InvalidRequestError, QuotaError, SkyError

REGION = "local"
ZONES = ("local-a", "local-b")
STOPPED_MARK = "stopped"


class SpotMarket(Protocol):
    """What a trace-bound spot zone answers (implemented by the managed-jobs work)."""

    def available(self, zone: str | None, now: float) -> bool: ...

    def preempted(self, cluster: ClusterInfo, now: float) -> bool: ...


def nodes_dir() -> Path:
    from skybroker.config import home

    return home() / "local_nodes"


def _tag_prefix(cluster_name: str) -> str:
    from skybroker.clouds.clients import broker_id

    return f"{broker_id()}/{cluster_name}/"


def check_quota(spec: ClusterSpec) -> None:
    """Refuse (QuotaError) a launch asking for more vCPUs than `local.quota` grants."""
    from skybroker.config import load_config

    quota = (load_config().get("local") or {}).get("quota") or {}
    key = "spot_vcpus" if spec.spot else "vcpus"
    if quota.get(key) is None:
        return
    from skybroker.catalog.store import load_catalog

    table = load_catalog("local")
    rows = table.vcpus[table.instance_type == spec.instance_type]
    need = float(rows[0] if len(rows) else 0.0) * spec.num_nodes
    if need > float(quota[key]):
        raise QuotaError(f"local {'spot ' if spec.spot else ''}vCPU quota is {float(quota[key]):g}, "
                         f"{spec.num_nodes}x {spec.instance_type} needs {need:g}",
                         hint=f"raise local.quota.{key} in config.yaml")


def kill_cluster_processes(cluster_name: str, sig: int = signal.SIGKILL) -> int:
    from skybroker.runtime.agent import kill_env

    return kill_env("SKYBROKER_NODE_TAG", _tag_prefix(cluster_name), sig, prefix=True)


class LocalProvisioner:
    cloud = "local"
    market: SpotMarket | None = None  # class-level hook; see module docstring

    def _market(self) -> SpotMarket | None:
        """The hook if set, else the trace-bound zones of config (`local.spot_markets`)."""
        if self.market is not None:
            return self.market
        from skybroker.clouds.local.spot_market import configured_market

        return configured_market()

    def launch(self, spec: ClusterSpec) -> ClusterInfo:
        if spec.region not in (REGION, None, "") or (spec.zone and spec.zone not in ZONES):
            raise InvalidRequestError(f"local cloud has region {REGION!r} and zones {ZONES}, "
                                      f"not {spec.region}/{spec.zone}")
        check_quota(spec)
        market = self._market() if spec.spot else None
        if market is not None and not market.available(spec.zone, time.time()):
            raise CapacityError(f"no spot capacity in local/{spec.zone} (trace-bound zone)", "zone")
        base = nodes_dir() / spec.cluster_name
        nodes = []
        for rank in range(spec.num_nodes):
            root = base / str(rank)
            (root / ".sky").mkdir(parents=True, exist_ok=True)
            nodes.append(NodeInfo(node_id=f"{spec.cluster_name}-{rank}", rank=rank, state=RUNNING,
                                  internal_ip=f"127.0.0.{rank + 1}", ssh_user=None,
                                  extra={"root": str(root)}))
        (base / STOPPED_MARK).unlink(missing_ok=True)
        (base / "0" / ".sky" / "autostopped").unlink(missing_ok=True)
        info = ClusterInfo(spec.cluster_name, self.cloud, spec.region or REGION, spec.zone,
                           spec.instance_type, spec.spot, nodes,
                           provider_data={"runner": "local", "node_home": True, "tags": spec.tags()})
        (base / "cluster.json").write_text(json.dumps(info.to_json(), indent=1))
        if market is not None and hasattr(market, "launched"):
            market.launched(info, time.time())  # records the launch tick, starts the reaper
        return info

    def query(self, cluster: ClusterInfo) -> dict[str, str]:
        base = nodes_dir() / cluster.cluster_name
        state = RUNNING
        if not base.exists():
            state = TERMINATED
        elif (base / STOPPED_MARK).exists():
            state = STOPPED
        else:
            marker = base / "0" / ".sky" / "autostopped"
            if marker.exists():
                try:
                    mode = json.loads(marker.read_text()).get("mode")
                except ValueError:
                    mode = "stop"
                state = TERMINATED if mode == "down" else STOPPED
            elif cluster.spot and (m := self._market()) is not None and m.preempted(cluster, time.time()):
                state = PREEMPTED
        out = {}
        for n in cluster.nodes:
            gone = state == RUNNING and not Path(n.extra.get("root", base / str(n.rank))).exists()
            out[n.node_id] = TERMINATED if gone else state
        return out

    def stop(self, cluster: ClusterInfo) -> None:
        base = nodes_dir() / cluster.cluster_name
        if base.exists():
            (base / STOPPED_MARK).write_text(str(time.time()))
        self._kill_verified(cluster.cluster_name)

    def start(self, cluster: ClusterInfo) -> ClusterInfo:
        base = nodes_dir() / cluster.cluster_name
        if not base.exists():
            raise SkyError(f"local cluster {cluster.cluster_name} has no node directories left.")
        (base / STOPPED_MARK).unlink(missing_ok=True)
        (base / "0" / ".sky" / "autostopped").unlink(missing_ok=True)
        for n in cluster.nodes:
            n.state = RUNNING
        return cluster

    def terminate(self, cluster: ClusterInfo) -> None:
        self._kill_verified(cluster.cluster_name)
        shutil.rmtree(nodes_dir() / cluster.cluster_name, ignore_errors=True)

    def open_ports(self, cluster: ClusterInfo, ports: list[str]) -> None:
        """Loopback needs no firewall rule."""

    @staticmethod
    def _kill_verified(name: str) -> None:
        for _ in range(50):
            if kill_cluster_processes(name) == 0:
                return
            time.sleep(0.02)
        raise SkyError(f"processes of local cluster {name} survived SIGKILL; check `ps e`.")


def describe_zones() -> dict[str, Any]:
    return {"region": REGION, "zones": list(ZONES)}
