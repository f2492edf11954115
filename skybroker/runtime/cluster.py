"""The laptop's side of a cluster: prepare its nodes, then talk to the head node's agent.

Everything here goes through runners (local or SSH), so the `local` and `ssh` clouds, and the
SDK clouds later, share one code path. Node facts come from `ClusterInfo`: each NodeInfo's
`extra["root"]` is the node's private directory; `provider_data` says how to reach nodes
(`runner: local|ssh`, `identity_file`, `known_hosts`, `strict_host_keys`, `node_home`).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skybroker.errors import SkyError
from skybroker.runtime import agent as agent_mod
from skybroker.runtime.runners import LocalRunner, Runner, SSHRunner, check

AGENT_SRC = Path(agent_mod.__file__)


@dataclass
class JobOutcome:
    job_id: int
    status: str | None  # None: detached before the job ended
    returncode: int | None
    message: str = ""


def node_root(node: Any) -> str:
    return node.extra["root"]


def _reach(info: Any) -> dict[str, Any]:
    """How to reach the nodes: provider_data, with defaults for SDK-cloud VMs (the broker's
    own key from `clients.ssh_identity()`, host keys recorded per cluster)."""
    pd = dict(info.provider_data or {})
    if info.cloud == "local":
        pd.setdefault("runner", "local")
        return pd
    pd.setdefault("runner", "ssh")
    if "identity_file" not in pd:
        from skybroker.clouds.clients import ssh_identity

        pd["identity_file"] = ssh_identity()[0]
    if "known_hosts" not in pd:
        from skybroker.config import home

        pd["known_hosts"] = str(home() / "ssh" / f"known_hosts.{info.cloud}.{info.cluster_name}")
    return pd


def node_runner(info: Any, node: Any, notify: Callable[[str], None] | None = None) -> Runner:
    pd = _reach(info)
    if pd["runner"] == "local":
        return LocalRunner(f"{info.cluster_name}/{node.rank}")
    return SSHRunner(node.external_ip or node.internal_ip, node.ssh_port, node.ssh_user or "root",
                     pd["identity_file"], pd["known_hosts"],
                     strict_host_keys=bool(pd.get("strict_host_keys")), notify=notify)


def ensure_roots(info: Any, nodes: Sequence[Any] | None = None) -> bool:
    """Give nodes without a root one under their home (`~/.skybroker/<cluster>/<rank>`, asked
    over SSH once). Returns whether anything changed (the caller persists the info)."""
    todo = [n for n in (nodes if nodes is not None else info.nodes) if not n.extra.get("root")]

    def resolve(n: Any) -> None:
        home = check(node_runner(info, n), "echo $HOME", "resolving $HOME").decode().strip()
        n.extra["home"] = home.splitlines()[-1]
        n.extra["root"] = f"{n.extra['home']}/.skybroker/{info.cluster_name}/{n.rank}"

    if todo:
        _parallel(resolve, todo)
    return bool(todo)


def head_runner(info: Any) -> Runner:
    ensure_roots(info, [info.head])
    return node_runner(info, info.head)


def node_tag(info: Any, rank: int) -> str:
    from skybroker.clouds.clients import broker_id

    return f"{broker_id()}/{info.cluster_name}/{rank}"


def agent_cmd(runner: Runner, info: Any, *args: str) -> str:
    """The agent command line on the head; it carries the head's tag so that a daemon it
    forks is found (and killed) by stop/down like every other process of the node."""
    root = node_root(info.head)
    tag = f"{agent_mod.CLIENT_ENV} SKYBROKER_NODE_TAG={shlex.quote(node_tag(info, info.head.rank))}"
    return " ".join([tag, runner.python, shlex.quote(f"{root}/.sky/agent.py"), *map(shlex.quote, args)])


def cluster_json(info: Any, num_gpus_per_node: int, node_cpus: float | None = None) -> dict[str, Any]:
    pd = _reach(info)
    remote = pd["runner"] == "ssh"
    nodes = []
    for n in sorted(info.nodes, key=lambda n: n.rank):
        ssh = None
        if remote and n.rank != info.head.rank:
            ssh = {"host": n.internal_ip or n.external_ip, "port": n.ssh_port, "user": n.ssh_user or "root"}
        nodes.append({"rank": n.rank, "ip": n.internal_ip or n.external_ip or "127.0.0.1",
                      "root": node_root(n), "tag": node_tag(info, n.rank), "ssh": ssh})
    head_sky = f"{node_root(info.head)}/.sky"
    return {
        "cluster": info.cluster_name, "nodes": nodes, "python": "python3 -S",
        "ssh_key": f"{head_sky}/key", "known_hosts": f"{head_sky}/known_hosts",
        "num_gpus_per_node": num_gpus_per_node, "node_home": bool(pd.get("node_home")),
        "node_cpus": node_cpus or min((float(n.extra["cpus"]) for n in info.nodes
                                       if n.extra.get("cpus")), default=None),
        "keepalive": pd.get("keepalive") or [3, 3],
        # {"stop": argv, "down": argv}: what the head runs when autostop fires, after killing
        # the cluster's processes (an SDK cloud sets e.g. ["sudo", "shutdown", "-h", "now"]).
        "autostop_hook": pd.get("autostop_hook"),
        "cluster_info": {"cluster_name": info.cluster_name, "cloud": info.cloud,
                         "region": info.region, "zone": info.zone, "instance_type": info.instance_type,
                         "num_nodes": len(info.nodes), "spot": info.spot},
    }


def _parallel(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    if len(items) == 1:
        return [fn(items[0])]
    with ThreadPoolExecutor(max_workers=min(16, len(items))) as ex:
        return list(ex.map(fn, items))


SYNC_THRESHOLD = 32 << 20  # bigger workdirs go by rsync (deltas) instead of one tar stream


def _mount_target(node: Any, dst: str, node_home: bool) -> str:
    """Where a file_mounts destination lands: `~` is the node root on sandboxed nodes."""
    root = node_root(node)
    home = root if node_home else node.extra.get("home", "~")
    if dst.startswith("~"):
        return home + dst[1:]
    if node_home and dst.startswith("/"):
        return root + dst  # a sandbox cannot write to the real /: keep it inside the node
    return dst if dst.startswith("/") else f"{root}/sky_workdir/{dst}"


def prepare(info: Any, task: Any, *, num_gpus_per_node: int = 0, node_cpus: float | None = None,
            notify: Callable[[str], None] | None = None) -> None:
    """Upload the agent, cluster facts, workdir and file mounts: one transfer per node, in parallel."""
    from skybroker.runtime.ignore import list_files

    wd, workdir_files, big = None, [], False
    if getattr(task, "workdir", None):
        wd = Path(task.workdir).expanduser()
        if not wd.is_dir():
            raise SkyError(f"workdir {task.workdir!r} does not exist or is not a directory.")
        workdir_files = list_files(wd)
        big = sum((wd / f).stat().st_size for f in workdir_files if (wd / f).is_file()) > SYNC_THRESHOLD
    mounts = []
    for dst, src in (getattr(task, "file_mounts", None) or {}).items():
        if not isinstance(src, str) or "://" in src:
            raise SkyError(f"file_mounts {dst}: only local paths are supported on this cluster "
                           f"(got {src!r}).")
        p = Path(src).expanduser()
        if not p.exists():
            raise SkyError(f"file_mounts source {src!r} (for {dst}) does not exist.")
        mounts.append((str(dst), p, list_files(p) if p.is_dir() else None))
    ensure_roots(info)
    if _reach(info)["runner"] == "ssh" and len(info.nodes) > 1:
        # Record every node's host key before the head's copy of known_hosts is taken.
        _parallel(lambda n: node_runner(info, n, notify).client(), list(info.nodes))
    cj = cluster_json(info, num_gpus_per_node, node_cpus)
    agent_bytes = AGENT_SRC.read_bytes()
    pd = _reach(info)

    def prep(node: Any) -> None:
        r = node_runner(info, node, notify)
        root = node_root(node)
        entries: list[tuple] = [(f"{root}/.sky/agent.py", agent_bytes, 0o644),
                                (f"{root}/sky_workdir", None, None)]
        if node.rank == info.head.rank:
            entries.append((f"{root}/.sky/cluster.json", json.dumps(cj, indent=1).encode(), 0o600))
            if pd["runner"] == "ssh" and len(info.nodes) > 1:
                # The head reaches workers with the pool's key and the recorded host keys.
                entries.append((f"{root}/.sky/key", Path(pd["identity_file"]).expanduser().read_bytes(), 0o600))
                entries.append((f"{root}/.sky/known_hosts", Path(pd["known_hosts"]).read_bytes(), 0o600))
        if wd is not None and not big:
            entries += [(f"{root}/sky_workdir/{f}", str(wd / f), None) for f in workdir_files]
        for dst, src, files in mounts:
            target = _mount_target(node, dst, cj["node_home"])
            if files is None:
                entries.append((target, str(src), None))
            else:
                entries += [(f"{target}/{f}", str(src / f), None) for f in files]
        r.put_files(entries)
        if big:
            r.sync(str(wd), f"{root}/sky_workdir", workdir_files)

    _parallel(prep, sorted(info.nodes, key=lambda n: n.rank))


def setup_hash(task: Any) -> str | None:
    if not getattr(task, "setup", None):
        return None
    envs = {**(getattr(task, "envs", None) or {}), **(getattr(task, "secrets", None) or {})}
    blob = json.dumps({"setup": task.setup, "envs": envs}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def job_spec(task: Any, *, with_setup: bool, num_nodes: int | None = None) -> dict[str, Any]:
    import time

    envs = {**(getattr(task, "envs", None) or {}), **(getattr(task, "secrets", None) or {})}
    res = (getattr(task, "resources", None) or [None])[0]
    cpus = res.cpus_requirement() if res is not None and hasattr(res, "cpus_requirement") else None
    accs = dict(getattr(res, "accelerators", None) or {})
    return {
        "cpus": cpus[0] if cpus else None, "gpus": float(sum(accs.values())) if accs else 0.0,
        "name": getattr(task, "name", None), "run": getattr(task, "run", None),
        "setup": task.setup if with_setup else None,
        "setup_hash": setup_hash(task) if with_setup else None,
        "envs": {k: "" if v is None else str(v) for k, v in envs.items()},
        "num_nodes": num_nodes or getattr(task, "num_nodes", 1) or 1,
        "task_prefix": time.strftime("sky-%Y-%m-%d-%H-%M-%S"),
    }


class _LineParser:
    """Splits agent output into user log lines and the agent's marker lines."""

    def __init__(self, on_line: Callable[[str], None] | None, log_file: Path | None) -> None:
        self.on_line, self.job_id, self.end = on_line, None, None
        self.log = open(log_file, "a") if log_file else None  # noqa: SIM115 (closed with the parser)

    def __call__(self, raw: bytes) -> None:
        line = raw.decode(errors="replace")
        if line.startswith(agent_mod.MARK_ID):
            self.job_id = int(line.split()[1])
            return
        if line.startswith(agent_mod.MARK_END):
            self.end = json.loads(line.split(" ", 1)[1])
            return
        if self.log:
            self.log.write(line)
            self.log.flush()
        if self.on_line:
            self.on_line(line.rstrip("\n"))


def local_log_path(cluster: str, job_id: int) -> Path:
    from skybroker.config import home

    p = home() / "logs" / cluster / str(job_id) / "run.log"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def submit(info: Any, spec: dict[str, Any], *, follow: bool,
           on_line: Callable[[str], None] | None = None,
           on_job_id: Callable[[int], None] | None = None) -> JobOutcome:
    """Queue a job on the head's agent; with follow, stream its log until it ends.

    KeyboardInterrupt while following detaches (the job keeps running) and propagates after
    the job id is known, so callers can say how to reattach.
    """
    r = head_runner(info)
    parser = _LineParser(on_line, None)
    holder: dict[str, Any] = {}

    def handle(raw: bytes) -> None:
        parser(raw)
        if parser.job_id is not None and "id" not in holder:
            holder["id"] = parser.job_id
            parser.log = open(local_log_path(info.cluster_name, parser.job_id), "a")  # noqa: SIM115
            if on_job_id:
                on_job_id(parser.job_id)

    args = ["submit", node_root(info.head)] + (["--follow"] if follow else [])
    rc, out = r.run(agent_cmd(r, info, *args), stdin=json.dumps(spec).encode(), on_output=handle)
    if parser.job_id is None:
        raise SkyError(f"Submitting the job to {info.cluster_name} failed (exit {rc}): "
                       f"{out.decode(errors='replace').strip()[-300:]}")
    end = parser.end or {}
    return JobOutcome(parser.job_id, end.get("status"), end.get("rc"), end.get("message") or "")


def logs(info: Any, job_id: int, *, follow: bool, on_line: Callable[[str], None] | None) -> JobOutcome:
    r = head_runner(info)
    parser = _LineParser(on_line, None)
    args = ["logs", node_root(info.head), str(job_id)] + (["--follow"] if follow else [])
    rc, out = r.run(agent_cmd(r, info, *args), on_output=parser)
    if parser.end is None:
        raise SkyError(f"Job {job_id} not found on cluster {info.cluster_name}.")
    return JobOutcome(job_id, parser.end.get("status"), parser.end.get("rc"), parser.end.get("message") or "")


def queue(info: Any) -> list[dict[str, Any]]:
    r = head_runner(info)
    out = check(r, agent_cmd(r, info, "queue", node_root(info.head)), "reading the job queue")
    return json.loads(out.decode().strip().splitlines()[-1])


def cancel(info: Any, job_ids: Sequence[int] | None) -> list[int]:
    r = head_runner(info)
    ids = ["all"] if job_ids is None else [str(i) for i in job_ids]
    out = check(r, agent_cmd(r, info, "cancel", node_root(info.head), *ids), "cancelling")
    return json.loads(out.decode().strip().splitlines()[-1])


def set_autostop(info: Any, minutes: int, down: bool) -> None:
    r = head_runner(info)
    args = ["autostop", node_root(info.head), str(minutes)] + (["--down"] if down else [])
    check(r, agent_cmd(r, info, *args), "setting autostop")
