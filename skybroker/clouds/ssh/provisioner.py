"""SSHProvisioner: claims hosts of a pool for a cluster and checks each is usable.

"Launching" an ssh cluster means: claim free hosts of the pool (the plan's region), reach
each one (host keys recorded on first contact per pool, then enforced), resolve its home and
check python3 is there. Stop kills every process of the cluster on its hosts (hosts keep
running: they are yours); terminate also removes the node directories and releases the hosts.
Every process started on a node carries SKYBROKER_NODE_TAG, which is how they are found.
"""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from skybroker.clouds.base import RUNNING, STOPPED, TERMINATED, ClusterInfo, ClusterSpec, NodeInfo
from skybroker.clouds.ssh import pools as P
from skybroker.errors import SkyError

UNREACHABLE = "UNREACHABLE"  # not in base.NODE_STATES: a host we could not reach (cluster goes INIT)
_PROBE = ("cd && echo \"HOME=$HOME\" && python3 -c 'import sys; print(\"PY=%d.%d\" % sys.version_info[:2])'"
          " && uname -m | sed 's/^/ARCH=/' && (nproc 2>/dev/null || echo 0) | sed 's/^/CPUS=/'")
_CLEAR = "; rm -f {root}/.sky/stopped {root}/.sky/autostopped"


def _root_expr(root_dir: str) -> str:
    """root_dir for a remote shell: `~` expanded there, the rest quoted."""
    if root_dir == "~" or root_dir.startswith("~/"):
        return '"$HOME"' + shlex.quote(root_dir[1:]) if root_dir != "~" else '"$HOME"'
    return shlex.quote(root_dir)


def _runner(pool: P.Pool, host: P.Host, notify=None):
    from skybroker.runtime.runners import SSHRunner

    return SSHRunner(host.address, host.port, host.user, pool.identity_file, pool.known_hosts,
                     strict_host_keys=pool.strict_host_keys, notify=notify,
                     connect_timeout=min(10.0, pool.keepalive[0] * pool.keepalive[1] + 2.0))


def _pmap(fn, items):
    items = list(items)
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(16, len(items))) as ex:
        return list(ex.map(fn, items))


def _agent_stdin() -> bytes:
    from skybroker.runtime import agent

    return Path(agent.__file__).read_bytes()


class SSHProvisioner:
    cloud = "ssh"

    def __init__(self, notify=None) -> None:
        import sys

        self.notify = notify or (lambda m: print(m, file=sys.stderr, flush=True))

    def launch(self, spec: ClusterSpec) -> ClusterInfo:
        pool = P.get_pool(spec.region)
        if not Path(pool.identity_file).expanduser().is_file():
            raise SkyError(f"ssh pool {pool.name}: identity_file {pool.identity_file} does not exist.")
        hosts = P.claim(pool, spec.cluster_name, spec.num_nodes)

        def probe(item: tuple[int, P.Host]) -> NodeInfo:
            rank, h = item
            r = _runner(pool, h, self.notify)
            root_q = f"{_root_expr(pool.root_dir)}/{shlex.quote(spec.cluster_name)}/{rank}"
            rc, out = r.run(_PROBE + _CLEAR.format(root=root_q))
            facts = dict(line.split("=", 1) for line in out.decode(errors="replace").splitlines()
                         if "=" in line)
            if rc != 0 or "PY" not in facts:
                raise SkyError(f"{r}: python3 is required on ssh hosts (probe exit {rc}).")
            root_dir = pool.root_dir.replace("~", facts["HOME"], 1) if pool.root_dir.startswith("~") \
                else pool.root_dir
            return NodeInfo(node_id=f"{h.address}:{h.port}", rank=rank, state=RUNNING,
                            internal_ip=h.address, external_ip=h.address, ssh_port=h.port,
                            ssh_user=h.user, extra={"root": f"{root_dir}/{spec.cluster_name}/{rank}",
                                                    "home": facts["HOME"], "arch": facts.get("ARCH"),
                                                    "cpus": int(facts.get("CPUS") or 0) or None,
                                                    "python": facts["PY"]})

        try:
            nodes = _pmap(probe, enumerate(hosts))
        except BaseException:
            P.release(spec.cluster_name)
            raise
        return ClusterInfo(spec.cluster_name, self.cloud, pool.name, None, spec.instance_type, False,
                           nodes, provider_data={"runner": "ssh", "pool": pool.name,
                                                 "identity_file": str(Path(pool.identity_file).expanduser()),
                                                 "known_hosts": pool.known_hosts,
                                                 "strict_host_keys": pool.strict_host_keys,
                                                 "keepalive": list(pool.keepalive),
                                                 "tags": spec.tags()})

    def _nodes(self, cluster: ClusterInfo) -> tuple[P.Pool, list[tuple[NodeInfo | None, P.Host]]]:
        claims = P.claims_of(cluster.cluster_name)
        pool_name = cluster.region or (claims[0][0] if claims else "")
        pool = P.get_pool(pool_name)
        if cluster.nodes:
            return pool, [(n, P.Host(n.internal_ip, n.ssh_port, n.ssh_user or "root"))
                          for n in sorted(cluster.nodes, key=lambda n: n.rank)]
        users = {(h.address, h.port): h.user for h in pool.hosts}
        return pool, [(None, P.Host(h.address, h.port, users.get((h.address, h.port), "root")))
                      for _, h in claims]

    def query(self, cluster: ClusterInfo) -> dict[str, str]:
        pool, nodes = self._nodes(cluster)
        head_root = cluster.head.extra["root"] if cluster.nodes else ""
        liveness = pool.keepalive[0] * pool.keepalive[1] + 2.0  # same window as the head's

        def one(item: tuple[NodeInfo | None, P.Host]) -> tuple[str, str]:
            node, h = item
            root = shlex.quote(node.extra["root"])
            # Every node keeps its own `stopped` mark; autostop leaves its mark on the head.
            cmd = f"test -d {root} && echo DIR; test -e {root}/.sky/stopped && echo STOPPED_MARK; "
            if node.extra["root"] == head_root:
                cmd += f"cat {root}/.sky/autostopped 2>/dev/null; "
            try:
                rc, out = _runner(pool, h).run(cmd + "true", timeout=liveness)
            except SkyError:
                return node.node_id, UNREACHABLE
            text = out.decode(errors="replace")
            if '"mode": "down"' in text:
                return node.node_id, "AUTODOWN"
            if '"mode": "stop"' in text:
                return node.node_id, "AUTOSTOP"
            if "DIR" not in text:
                return node.node_id, TERMINATED
            return node.node_id, STOPPED if "STOPPED_MARK" in text else RUNNING

        states = dict(_pmap(one, [x for x in nodes if x[0] is not None]))
        auto = {"AUTODOWN": TERMINATED, "AUTOSTOP": STOPPED}.get(states.get(cluster.head.node_id, ""))
        if auto is not None:  # the head's agent stopped the whole cluster
            return {n: auto if s != UNREACHABLE else s for n, s in states.items()}
        return states

    def _kill(self, pool: P.Pool, nodes: list, cluster_name: str, extra_cmd: str = "") -> None:
        from skybroker.runtime.cluster import node_tag

        class _C:
            pass

        info = _C()
        info.cluster_name = cluster_name

        def one(item: tuple[int, tuple[NodeInfo | None, P.Host]]) -> None:
            i, (node, h) = item
            tag = node_tag(info, node.rank if node else i)
            kill = f"python3 -S - kill SKYBROKER_NODE_TAG {shlex.quote(tag)}"
            try:
                r = _runner(pool, h)
                for _ in range(20):  # until a pass finds nothing left (verified)
                    rc, out = r.run(kill, stdin=_agent_stdin(),
                                    timeout=pool.keepalive[0] * pool.keepalive[1] + 2.0)
                    if rc == 0 and out.decode().strip().splitlines()[-1:] == ["0"]:
                        break
                else:
                    raise SkyError(f"processes of {cluster_name} on {r} survive SIGKILL.")
                if extra_cmd and node is not None:
                    r.run(extra_cmd.format(root=shlex.quote(node.extra["root"])))
            except SkyError as e:
                if "Cannot reach" not in str(e):
                    raise
                self.notify(f"Warning: {e} Its processes could not be killed.")

        _pmap(one, list(enumerate(nodes)))

    def stop(self, cluster: ClusterInfo) -> None:
        pool, nodes = self._nodes(cluster)
        self._kill(pool, nodes, cluster.cluster_name,
                   "mkdir -p {root}/.sky && echo stopped > {root}/.sky/stopped")

    def start(self, cluster: ClusterInfo) -> ClusterInfo:
        pool, nodes = self._nodes(cluster)
        states = self.query(cluster)
        bad = [f"{n}={s}" for n, s in states.items() if s not in (RUNNING, STOPPED)]
        if bad:
            raise SkyError(f"Cannot start {cluster.cluster_name}: {', '.join(bad)}.")
        _pmap(lambda item: _runner(pool, item[1]).run(
            f"rm -f {shlex.quote(item[0].extra['root'])}/.sky/stopped "
            f"{shlex.quote(item[0].extra['root'])}/.sky/autostopped"), [x for x in nodes if x[0]])
        for n in cluster.nodes:
            n.state = RUNNING
        return cluster

    def terminate(self, cluster: ClusterInfo) -> None:
        try:
            pool, nodes = self._nodes(cluster)
        except SkyError:
            P.release(cluster.cluster_name)
            return
        self._kill(pool, nodes, cluster.cluster_name, "rm -rf {root}")
        P.release(cluster.cluster_name)

    def open_ports(self, cluster: ClusterInfo, ports: list[str]) -> None:
        """Your hosts, your firewall: nothing to do."""


def describe(_: Any = None) -> str:
    return "ssh pools: " + ", ".join(P.load_pools())
