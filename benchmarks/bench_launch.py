"""Overhead of `sky launch`: from starting the CLI to the first line of the task's `run` output.

Bars (issue 4): a 1-node `local` task < 1.5 s; a 4-node `ssh` cluster on loopback sshd < 3 s.
The task prints its first line immediately, so the measured time is all broker overhead:
CLI start, task parse, plan, provision, node preparation, job submission and log streaming.

    python benchmarks/bench_launch.py [--repeat 5] [--skip-ssh]

Runs in a temporary SKYBROKER_HOME (nothing touches ~/.sky) and downs what it launches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def sky(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skybroker", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def time_to_first_line(env: dict, *args: str, expect_lines: int = 1) -> tuple[float, float]:
    """(seconds to the first stdout line, seconds to `expect_lines` lines) of `sky launch`."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "skybroker", "launch", "-y", *args], env=env,
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = None
    seen = 0
    for line in p.stdout:
        if "FIRST" in line:
            seen += 1
            first = first or time.perf_counter() - t0
            if seen == expect_lines:
                break
    allx = time.perf_counter() - t0
    p.stdout.close()
    err = p.stderr.read()
    if p.wait(60) != 0 or first is None:
        raise SystemExit(f"launch failed ({p.returncode}):\n{err}")
    return first, allx


def bench_local(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, SKYBROKER_HOME=home)
        task = Path(home) / "task.yaml"
        task.write_text("resources: {cloud: local}\nrun: echo FIRST\n")
        cold, _ = time_to_first_line(env, "-c", "cold", str(task))
        sky(env, "down", "-y", "cold")
        new, reuse = [], []
        for i in range(repeat):
            new.append(time_to_first_line(env, "-c", f"b{i}", str(task))[0])
            reuse.append(time_to_first_line(env, "-c", f"b{i}", str(task))[0])
            sky(env, "down", "-y", f"b{i}")
    print(f"local 1-node  first launch in a fresh home (catalog cache cold): {cold:.3f} s")
    print(f"local 1-node  new cluster:    median {statistics.median(new):.3f} s  "
          f"(min {min(new):.3f}, max {max(new):.3f}, n={repeat})   bar < 1.5 s")
    print(f"local 1-node  reused cluster: median {statistics.median(reuse):.3f} s")


def bench_ssh(repeat: int) -> None:
    import sshd
    import yaml

    if not sshd.have_sshd():
        print("ssh: skipped (openssh-server not installed)")
        return
    with tempfile.TemporaryDirectory() as home:
        cluster = sshd.Cluster.start(Path(home) / "sshd", 4)
        try:
            env = dict(os.environ, SKYBROKER_HOME=home)
            cfg = {"ssh": {"pools": cluster.pool_config("bench", root_dir=f"{home}/remote")}}
            (Path(home) / "config.yaml").write_text(yaml.safe_dump(cfg))
            task = Path(home) / "task.yaml"
            task.write_text("num_nodes: 4\nresources: {cloud: ssh}\nrun: echo FIRST $SKYPILOT_NODE_RANK\n")
            new, alln, reuse = [], [], []
            for i in range(repeat):
                f, a = time_to_first_line(env, "-c", f"s{i}", str(task), expect_lines=4)
                new.append(f)
                alln.append(a)
                reuse.append(time_to_first_line(env, "-c", f"s{i}", str(task), expect_lines=4)[0])
                sky(env, "down", "-y", f"s{i}")
        finally:
            cluster.stop()
    print(f"ssh 4-node    new cluster:    median {statistics.median(new):.3f} s to the first line, "
          f"{statistics.median(alln):.3f} s to all 4 nodes' lines (n={repeat})   bar < 3 s")
    print(f"ssh 4-node    reused cluster: median {statistics.median(reuse):.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-ssh", action="store_true")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), load {os.getloadavg()[0]:.2f}")
    bench_local(args.repeat)
    if not args.skip_ssh:
        bench_ssh(args.repeat)


if __name__ == "__main__":
    main()
