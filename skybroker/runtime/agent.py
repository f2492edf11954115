# ruff: noqa: UP031, SIM115  (runs on nodes with any python3; log handles outlive blocks)
"""The cluster-side agent: one stdlib-only file copied to every node and run with python3.

Why it exists: jobs must keep running, finish, and be recorded while the laptop sleeps, and
autostop must fire without the laptop. So the head node runs a small daemon that owns the
cluster's job queue (SQLite in the head's node root) and drives each job on every node (local
processes, or `ssh` to worker nodes with the cluster's key and verified host keys). The CLI
only submits, follows logs, cancels and asks for the queue, all through this file.

Layout under a node root R:  R/.sky/{agent.py, cluster.json, jobs.db, jobs/<id>/*.log,
daemon.lock, daemon.log, setup_hash, autostop.json, autostopped}. Every process started on a
node carries SKYBROKER_NODE_TAG=<broker>/<cluster>/<rank> (and SKYBROKER_JOB=<cluster>/<id>)
in its environment, so stop/down/cancel find all of them, descendants included.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time

PENDING, SETTING_UP, RUNNING = "PENDING", "SETTING_UP", "RUNNING"
SUCCEEDED, FAILED, FAILED_SETUP, CANCELLED = "SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED"
TERMINAL = (SUCCEEDED, FAILED, FAILED_SETUP, CANCELLED)
MARK_ID, MARK_END, MARK_PID, MARK_RC = "__SKY_JOB_ID__", "__SKY_JOB_END__", "__SKY_PGID__", "__SKY_RC__"
POLL_S = 0.02
IDLE_EXIT_S = 120.0
# curve25519 first: the post-quantum default kex costs ~0.3 s per connection on small nodes.
KEX = "curve25519-sha256,curve25519-sha256@libssh.org,sntrup761x25519-sha512@openssh.com"


def sky_dir(root: str) -> str:
    return os.path.join(root, ".sky")


def load_cluster(root: str) -> dict:
    """cluster.json, re-read if caught mid-rewrite (every launch/exec re-uploads it)."""
    for attempt in range(50):
        try:
            with open(os.path.join(sky_dir(root), "cluster.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            if attempt == 49:
                raise
            time.sleep(0.02)
    raise AssertionError("unreachable")


def db(root: str) -> sqlite3.Connection:
    path = os.path.join(sky_dir(root), "jobs.db")
    if not os.path.exists(path):  # it holds the tasks' secrets: private to the user
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT,"
                 " status TEXT, submitted REAL, started REAL, ended REAL, rc INTEGER, spec TEXT,"
                 " pids TEXT, message TEXT)")
    return conn


def set_job(root: str, job_id: int, only_if_active: bool = False, **cols) -> None:
    conn = db(root)
    sets = ", ".join(k + "=?" for k in cols)
    cond = " AND status NOT IN ({})".format(",".join("?" * len(TERMINAL))) if only_if_active else ""
    args = list(cols.values()) + [job_id] + (list(TERMINAL) if only_if_active else [])
    conn.execute(f"UPDATE jobs SET {sets} WHERE id=?{cond}", args)
    conn.close()


def job_row(root: str, job_id: int):
    conn = db(root)
    row = conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
    conn.close()
    return row


# ---- processes on nodes ----


CLIENT_ENV = "SKYBROKER_AGENT_CLIENT=1"  # marks CLI-driven agent commands (submit, logs, ...)


def kill_env(key: str, value: str, sig: int = signal.SIGKILL, prefix: bool = False,
             skip: bytes | None = None) -> int:
    """Signal every process whose environment has key=value (or key=value*, with prefix),
    except those that also carry `skip`. Linux /proc based; returns how many were signalled.
    """
    needle = (f"{key}={value}").encode()
    me, n = os.getpid(), 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if skip is not None and skip in env:
            continue
        if needle in env or (prefix and any(e.startswith(needle) for e in env)):
            try:
                os.kill(int(pid), sig)
                n += 1
            except OSError:
                pass
    return n


def ssh_argv(cluster: dict, node: dict, remote_cmd: str) -> list:
    s = node["ssh"]
    ka = cluster.get("keepalive") or (3, 3)  # a silent worker is declared lost after ~9 s
    return ["ssh", "-i", cluster["ssh_key"], "-p", str(s["port"]), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + cluster["known_hosts"],
            "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=%d" % ka[0],
            "-o", "ServerAliveCountMax=%d" % ka[1],
            "-o", "LogLevel=ERROR", "-o", "KexAlgorithms=" + KEX,
            # One multiplexed connection per worker, kept 2 min after its last session: later
            # jobs, cancels and kills start in ~20 ms instead of a new handshake each.
            "-o", "ControlMaster=auto", "-o", "ControlPersist=120",
            "-o", "ControlPath=" + control_path(cluster), "{}@{}".format(s["user"], s["host"]),
            remote_cmd]


def control_path(cluster: dict) -> str:
    """Mux sockets live in the head's node dir (gone with `down`) when the path fits a unix
    socket name (~104 bytes; `host-port` adds <= 22), else in /tmp."""
    d = os.path.join(sky_dir(cluster["nodes"][0]["root"]), "cm")
    if len(d) > 80:
        return "/tmp/skybroker-%C"
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, "%h-%p")


def node_python(cluster: dict) -> str:
    return cluster.get("python") or "python3 -S"


def start_on_node(cluster: dict, node: dict, script: str, env: dict, cwd: str) -> subprocess.Popen:
    """Start `script` on a node; stdout+stderr come back on the Popen's stdout."""
    if not node.get("ssh"):
        full = dict(os.environ)
        full.update(env)
        return subprocess.Popen(["bash", "-c", script], cwd=cwd, env=full, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    agent = os.path.join(sky_dir(node["root"]), "agent.py")
    cmd = f"{node_python(cluster)} {shlex.quote(agent)} exec-node"
    p = subprocess.Popen(ssh_argv(cluster, node, cmd), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    p.stdin.write(json.dumps({"script": script, "env": env, "cwd": cwd}).encode())
    p.stdin.close()
    return p


def exec_node() -> int:
    """Worker side of start_on_node: run the script in its own session, relay its output."""
    req = json.loads(sys.stdin.read())
    env = dict(os.environ)
    env.update(req["env"])
    p = subprocess.Popen(["bash", "-c", req["script"]], cwd=req["cwd"], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    out = sys.stdout.buffer
    out.write(("%s %d\n" % (MARK_PID, p.pid)).encode())
    out.flush()
    for line in iter(p.stdout.readline, b""):
        try:
            out.write(line)
            out.flush()
        except OSError:  # the head is gone: keep draining so the job is not blocked
            pass
    rc = p.wait()
    try:  # says "the command ended with rc", as opposed to the connection dying (ssh 255)
        out.write(("%s %d\n" % (MARK_RC, rc)).encode())
        out.flush()
    except OSError:
        pass
    return rc


def kill_on_nodes(cluster: dict, key: str, value: str, nodes=None) -> None:
    """Kill processes tagged key=value on every (given) node, in parallel."""
    procs = []
    for node in nodes or cluster["nodes"]:
        if not node.get("ssh"):
            kill_env(key, value)
            continue
        agent = os.path.join(sky_dir(node["root"]), "agent.py")
        cmd = f"{node_python(cluster)} {shlex.quote(agent)} kill {shlex.quote(key)} {shlex.quote(value)}"
        procs.append(subprocess.Popen(ssh_argv(cluster, node, cmd), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


# ---- running one job ----


def node_env(cluster: dict, spec: dict, job_id: int, rank: int, nodes: list) -> dict:
    env = {k: str(v) for k, v in (spec.get("envs") or {}).items()}
    env.update({
        "SKYPILOT_NODE_RANK": str(rank),
        "SKYPILOT_NODE_IPS": "\n".join(n["ip"] for n in nodes),
        "SKYPILOT_NUM_NODES": str(len(nodes)),
        "SKYPILOT_NUM_GPUS_PER_NODE": str(cluster.get("num_gpus_per_node", 0)),
        "SKYPILOT_TASK_ID": "%s_%s_%d" % (spec.get("task_prefix", "sky"), cluster["cluster"], job_id),
        "SKYPILOT_CLUSTER_INFO": json.dumps(cluster.get("cluster_info") or {}),
        "SKYPILOT_JOB_ID": str(job_id),
        "SKYBROKER_NODE_TAG": nodes[rank]["tag"],
        "SKYBROKER_JOB": "%s/%d" % (cluster["cluster"], job_id),
    })
    if cluster.get("node_home"):
        env["HOME"] = nodes[rank]["root"]
    return env


def run_phase(root: str, cluster: dict, spec: dict, job_id: int, phase: str, log_path: str) -> tuple:
    """Run setup or run on every node of the job; returns (rc, message)."""
    nodes = cluster["nodes"][: int(spec.get("num_nodes") or len(cluster["nodes"]))]
    script = spec[phase]
    multi = len(nodes) > 1
    lock = threading.Lock()
    log = open(log_path, "ab", buffering=0)
    procs, pids, ended = [], {}, set()
    for rank, node in enumerate(nodes):
        cwd = os.path.join(node["root"], "sky_workdir")
        p = start_on_node(cluster, node, script, node_env(cluster, spec, job_id, rank, nodes), cwd)
        procs.append(p)
        if not node.get("ssh"):
            pids[str(rank)] = p.pid
    set_job(root, job_id, pids=json.dumps(pids))

    def pump(rank: int, p: subprocess.Popen) -> None:
        prefix = ("(%s, rank=%d) " % ("head" if rank == 0 else "worker%d" % rank, rank)).encode()
        for line in iter(p.stdout.readline, b""):
            if line.startswith(MARK_PID.encode()):
                pids[str(rank)] = int(line.split()[1])
                continue
            if line.startswith(MARK_RC.encode()):
                ended.add(rank)
                continue
            with lock:
                log.write(prefix + line if multi else line)

    threads = [threading.Thread(target=pump, args=(r, p), daemon=True) for r, p in enumerate(procs)]
    for t in threads:
        t.start()
    rcs = [None] * len(procs)
    failed = None
    while any(rc is None for rc in rcs):
        for r, p in enumerate(procs):
            if rcs[r] is None and p.poll() is not None:
                rcs[r] = p.returncode
                if p.returncode != 0 and failed is None:
                    failed = r  # one node failing fails the job: stop the others
                    kill_on_nodes(cluster, "SKYBROKER_JOB", "%s/%d" % (cluster["cluster"], job_id),
                                  [n for i, n in enumerate(nodes) if i != r])
        time.sleep(POLL_S)
    for t in threads:
        t.join(timeout=5)
    set_job(root, job_id, pids=json.dumps(pids))
    msg = ""
    if failed is not None:
        rc, node = rcs[failed], nodes[failed]
        if node.get("ssh") and rc == 255 and failed not in ended:
            msg = "node rank %d (%s) was lost: ssh to it failed mid-job" % (failed, node["ip"])
        else:
            msg = "%s failed on node rank %d with exit code %d" % (phase, failed, rc)
        with lock:
            log.write((f"ERROR: {msg}\n").encode())
        log.close()
        return rc if rc > 0 else 1, msg
    log.close()
    return 0, ""


def run_job(root: str, job_id: int) -> None:
    cluster = load_cluster(root)
    row = job_row(root, job_id)
    spec = json.loads(row["spec"])
    jdir = os.path.join(sky_dir(root), "jobs", str(job_id))
    run_log = os.path.join(jdir, "run.log")
    hash_file = os.path.join(sky_dir(root), "setup_hash")
    try:
        old_hash = open(hash_file).read().strip()
    except OSError:
        old_hash = ""
    if spec.get("setup") and spec.get("setup_hash") != old_hash:
        set_job(root, job_id, True, status=SETTING_UP, started=time.time())
        rc, msg = run_phase(root, cluster, spec, job_id, "setup", run_log)
        if rc != 0:
            set_job(root, job_id, True, status=FAILED_SETUP, rc=rc, ended=time.time(), message=msg)
            return
        with open(hash_file, "w") as f:
            f.write(spec.get("setup_hash") or "")
    set_job(root, job_id, True, status=RUNNING, started=time.time())
    if not spec.get("run"):
        set_job(root, job_id, True, status=SUCCEEDED, rc=0, ended=time.time())
        return
    rc, msg = run_phase(root, cluster, spec, job_id, "run", run_log)
    status = SUCCEEDED if rc == 0 else FAILED
    set_job(root, job_id, True, status=status, rc=rc, ended=time.time(), message=msg)


def run_job_safely(root: str, job_id: int) -> None:
    """A driver error fails its job with the reason, instead of leaving it RUNNING forever."""
    try:
        run_job(root, job_id)
    except Exception as e:  # noqa: BLE001
        set_job(root, job_id, True, status=FAILED, ended=time.time(),
                message="job driver error: %r" % (e,))


# ---- the daemon ----


def read_autostop(root: str) -> dict:
    try:
        with open(os.path.join(sky_dir(root), "autostop.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def do_autostop(root: str, cluster: dict, down: bool) -> None:
    """Idle long enough: stop every process of the cluster and leave a marker for the laptop."""
    # Workers first (through the head's ssh connections, which die with the head's processes).
    for node in sorted(cluster["nodes"], key=lambda n: not n.get("ssh")):
        if node.get("ssh"):
            kill_on_nodes(cluster, "SKYBROKER_NODE_TAG", node["tag"], [node])
        else:  # spare the CLI's own agent commands (e.g. the `autostop` that armed us)
            kill_env("SKYBROKER_NODE_TAG", node["tag"], skip=CLIENT_ENV.encode())
    marker = os.path.join(sky_dir(root), "autostopped")
    with open(marker + ".tmp", "w") as f:
        json.dump({"mode": "down" if down else "stop", "time": time.time()}, f)
    os.rename(marker + ".tmp", marker)
    hook = (cluster.get("autostop_hook") or {}).get("down" if down else "stop")
    if hook:  # a cloud VM powers itself off here (the SDK clouds set this hook)
        subprocess.call(hook)


def job_demand(cluster: dict, spec: dict, root: str) -> dict:
    """What a job holds while it runs: nodes, CPUs and GPUs per node, or the whole cluster.

    Like SkyPilot: a task asks for its `cpus`/accelerators (default 0.5 CPU, no GPU), so
    small jobs share a cluster; a job that must (re)run setup has the cluster to itself.
    """
    try:
        with open(os.path.join(sky_dir(root), "setup_hash")) as f:
            done = f.read().strip()
    except OSError:
        done = ""
    cap_cpus, cap_gpus = cluster.get("node_cpus"), float(cluster.get("num_gpus_per_node") or 0)
    cpus = float(spec.get("cpus") or 0.5)
    gpus = float(spec.get("gpus") or 0)
    return {"nodes": int(spec.get("num_nodes") or len(cluster["nodes"])),
            "cpus": min(cpus, float(cap_cpus)) if cap_cpus else cpus,
            "gpus": min(gpus, cap_gpus),
            "exclusive": bool(spec.get("setup")) and spec.get("setup_hash") != done}


def fits(cluster: dict, want: dict, running: dict) -> bool:
    if want["exclusive"]:
        return not running
    if any(d["exclusive"] for _, d in running.values()):
        return False
    cap_cpus, cap_gpus = cluster.get("node_cpus"), float(cluster.get("num_gpus_per_node") or 0)
    for i in range(want["nodes"]):
        users = [d for _, d in running.values() if i < d["nodes"]]
        if cap_cpus and sum(d["cpus"] for d in users) + want["cpus"] > float(cap_cpus) + 1e-9:
            return False
        if sum(d["gpus"] for d in users) + want["gpus"] > cap_gpus + 1e-9:
            return False
    return True


def schedule(root: str, conn: sqlite3.Connection, running: dict) -> None:
    """Start pending jobs in submission order while they fit (the first that does not fit
    blocks the ones behind it, so big jobs are not starved by small ones)."""
    rows = conn.execute("SELECT id, spec FROM jobs WHERE status=? ORDER BY id", (PENDING,)).fetchall()
    if not rows:
        return
    cluster = load_cluster(root)
    for row in rows:
        want = job_demand(cluster, json.loads(row["spec"]), root)
        if not fits(cluster, want, running):
            return
        t = threading.Thread(target=run_job_safely, args=(root, row["id"]), daemon=True)
        running[row["id"]] = (t, want)
        set_job(root, row["id"], True, status=SETTING_UP if want["exclusive"] else RUNNING,
                started=time.time())
        t.start()


def daemon(root: str) -> int:
    import fcntl

    lock = open(os.path.join(sky_dir(root), "daemon.lock"), "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another daemon owns this cluster
    os.environ.pop(CLIENT_ENV.split("=")[0], None)  # jobs are not CLI commands
    conn = db(root)
    # Jobs a previous daemon left mid-flight have no driver any more (cluster stopped/crashed).
    conn.execute("UPDATE jobs SET status=?, ended=?, message=? WHERE status IN (?, ?)",
                 (FAILED, time.time(), "the job driver stopped (cluster stopped or crashed)",
                  SETTING_UP, RUNNING))
    running, idle_since = {}, time.time()
    while True:
        for job_id in [j for j, (t, _) in running.items() if not t.is_alive()]:
            del running[job_id]
            idle_since = time.time()
        try:
            schedule(root, conn, running)
        except Exception as e:  # noqa: BLE001 - the driver of every job must not die of one
            sys.stderr.write("schedule: %r\n" % (e,))
            sys.stderr.flush()
        if not running:
            auto = read_autostop(root)
            idle = time.time() - max(idle_since, float(auto.get("set_at", 0)))
            minutes = auto.get("minutes")
            if minutes is not None and minutes >= 0 and idle >= minutes * 60:
                do_autostop(root, load_cluster(root), bool(auto.get("down")))
                return 0
            if (minutes is None or minutes < 0) and idle >= IDLE_EXIT_S:
                # Release the lock, then look once more: a job submitted while we decided to
                # leave saw the lock held and started no daemon; keep it from waiting forever.
                fcntl.flock(lock, fcntl.LOCK_UN)
                if not conn.execute("SELECT 1 FROM jobs WHERE status=?", (PENDING,)).fetchone():
                    return 0
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return 0  # a new daemon took over
                idle_since = time.time()
        time.sleep(POLL_S)


def daemon_alive(root: str) -> bool:
    """Whether a daemon holds this cluster's lock."""
    import fcntl

    with open(os.path.join(sky_dir(root), "daemon.lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
    return False


def ensure_daemon(root: str) -> None:
    if daemon_alive(root):
        return
    cluster = load_cluster(root)
    tag = cluster["nodes"][0]["tag"]
    if os.environ.get("SKYBROKER_NODE_TAG") == tag:
        # This process was started carrying the head's tag (the CLI does that): fork the
        # daemon from it, saving a Python start-up (40-200 ms) on the first job's path.
        pid = os.fork()
        if pid:
            os.waitpid(pid, 0)
            return
        try:
            os.setsid()
            if os.fork():
                os._exit(0)  # the grandchild is orphaned to init: no zombie, no session
            null = os.open(os.devnull, os.O_RDONLY)
            log_fd = os.open(os.path.join(sky_dir(root), "daemon.log"),
                             os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(null, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.closerange(3, 1024)  # never hold the CLI's pipes open
            os.chdir(sky_dir(root))
            rc = daemon(root)
        except BaseException:
            rc = 1
        os._exit(rc or 0)
    env = dict(os.environ, SKYBROKER_NODE_TAG=tag)
    log = open(os.path.join(sky_dir(root), "daemon.log"), "ab")
    subprocess.Popen([sys.executable, "-S", os.path.abspath(__file__), "daemon", root], env=env,
                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                     start_new_session=True, close_fds=True, cwd=sky_dir(root))


# ---- client commands (the CLI calls these through a runner on the head) ----


def follow(root: str, job_id: int, tail: bool = True) -> int:
    """Print the job's log (following it while active); end with a status marker line."""
    path = os.path.join(sky_dir(root), "jobs", str(job_id), "run.log")
    out, pos, last = sys.stdout.buffer, 0, b"\n"
    checked, lost = time.time(), 0
    while True:
        row = job_row(root, job_id)
        if row is None:
            sys.stderr.write("no job %d\n" % job_id)
            return 2
        done = row["status"] in TERMINAL
        if not done and tail and time.time() - checked > 1.0:
            checked = time.time()
            lost = 0 if daemon_alive(root) else lost + 1
            if lost and row["status"] == PENDING:
                ensure_daemon(root)  # raced with an idle daemon's exit: start one
            elif lost >= 3:  # the driver is gone mid-job (cluster stopped/crashed): say so
                set_job(root, job_id, True, status=FAILED, ended=time.time(),
                        message="the job driver stopped (cluster stopped or crashed)")
                continue
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
        except OSError:
            data = b""
        if data:
            cut = len(data) if done else data.rfind(b"\n") + 1
            if cut:
                out.write(data[:cut])
                out.flush()
                last = data[cut - 1:cut]
            pos += cut
        if done or not tail:
            end = {"status": row["status"], "rc": row["rc"], "message": row["message"]}
            nl = "" if last == b"\n" else "\n"
            out.write((f"{nl}{MARK_END} {json.dumps(end)}\n").encode())
            out.flush()
            return 0
        time.sleep(POLL_S)


def submit(root: str, do_follow: bool) -> int:
    spec = json.loads(sys.stdin.read())
    os.makedirs(os.path.join(sky_dir(root), "jobs"), mode=0o700, exist_ok=True)
    conn = db(root)
    cur = conn.execute("INSERT INTO jobs(name, status, submitted, spec) VALUES (?, ?, ?, ?)",
                       (spec.get("name"), PENDING, time.time(), json.dumps(spec)))
    job_id = cur.lastrowid
    os.makedirs(os.path.join(sky_dir(root), "jobs", str(job_id)), exist_ok=True)
    conn.close()
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(sky_dir(root), "autostopped"))
    ensure_daemon(root)
    sys.stdout.write("%s %d\n" % (MARK_ID, job_id))
    sys.stdout.flush()
    return follow(root, job_id) if do_follow else 0


def orphan_check(conn: sqlite3.Connection, root: str) -> None:
    """Active jobs without a daemon lost their driver (cluster stopped, or it crashed)."""
    if not daemon_alive(root):
        conn.execute("UPDATE jobs SET status=?, ended=?, message=? WHERE status IN (?, ?)",
                     (FAILED, time.time(), "the job driver stopped (cluster stopped or crashed)",
                      SETTING_UP, RUNNING))


def queue(root: str) -> int:
    conn = db(root)
    orphan_check(conn, root)
    rows = [dict(r) for r in conn.execute("SELECT id, name, status, submitted, started, ended, rc, "
                                          "pids, message FROM jobs ORDER BY id")]
    print(json.dumps(rows))
    return 0


def cancel(root: str, ids: list) -> int:
    cluster = load_cluster(root)
    conn = db(root)
    if ids == ["all"]:
        ids = [r["id"] for r in conn.execute("SELECT id FROM jobs WHERE status NOT IN (?,?,?,?)",
                                             TERMINAL)]
    done = []
    for job_id in map(int, ids):
        cur = conn.execute("UPDATE jobs SET status=?, ended=?, message=? WHERE id=? AND status NOT IN "
                           "(?,?,?,?)", (CANCELLED, time.time(), "cancelled by user", job_id, *TERMINAL))
        if cur.rowcount:
            kill_on_nodes(cluster, "SKYBROKER_JOB", "%s/%d" % (cluster["cluster"], job_id))
            done.append(job_id)
    print(json.dumps(done))
    return 0


def set_autostop(root: str, minutes: int, down: bool) -> int:
    with open(os.path.join(sky_dir(root), "autostop.json"), "w") as f:
        json.dump({"minutes": minutes, "down": down, "set_at": time.time()}, f)
    if minutes >= 0:
        ensure_daemon(root)
    return 0


def main(argv: list) -> int:
    cmd = argv[0]
    if cmd == "exec-node":
        return exec_node()
    if cmd == "kill":
        print(kill_env(argv[1], argv[2], prefix="--prefix" in argv))
        return 0
    root = argv[1]
    if cmd == "daemon":
        return daemon(root)
    if cmd == "submit":
        return submit(root, "--follow" in argv)
    if cmd == "logs":
        return follow(root, int(argv[2]), "--follow" in argv)
    if cmd == "queue":
        return queue(root)
    if cmd == "cancel":
        return cancel(root, argv[2:])
    if cmd == "autostop":
        return set_autostop(root, int(argv[2]), "--down" in argv)
    sys.stderr.write(f"unknown agent command {cmd!r}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
