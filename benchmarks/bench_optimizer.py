"""Planning speed: `sky --help`, `sky launch --dryrun` (cold processes) and the optimizer call.

Run: python benchmarks/bench_optimizer.py [--repeat N]

Figures are medians over N runs. Machines here are noisy, so the optimizer is also compared
side by side, in the same run, with a plain-Python scan of the same catalog rows (the ratio is
the figure to trust). Bars (issue 2): --help < 150 ms, --dryrun of a GPU task over three clouds
< 300 ms, optimizer call < 10 ms.
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
ENTRY = "from skybroker.cli import main; main()"
GPU_TASK = """name: finetune
resources:
  accelerators: {A100:8, H100:8}
  any_of:
    - use_spot: true
    - use_spot: false
num_nodes: 2
run: python train.py
"""


def cold(args: list[str], repeat: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", ENTRY, *args], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def naive_plan(rows: list[dict], names: set[str], count: float) -> list[tuple[float, dict, bool]]:
    """The same request as a list-of-dicts scan: what a plain-Python optimizer does."""
    out = []
    for r in rows:
        if r["accelerator_name"] in names and r["accelerator_count"] == count:
            for spot in (True, False):
                p = r["spot_price"] if spot else r["price"]
                if p is not None:  # None = not offered
                    out.append((p * 2, r, spot))
    out.sort(key=lambda x: x[0])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="skybench-")
    env = {**os.environ, "SKYBROKER_HOME": home}
    task = Path(home) / "gpu.yaml"
    task.write_text(GPU_TASK)
    # Warm the compiled catalog cache once (a user's first run pays the CSV parse once).
    cold(["launch", "--dryrun", str(task)], 1, env)
    base = cold(["--version"], a.repeat, {**env})
    print(f"python + click startup (sky --version): {base * 1000:7.1f} ms")
    helpt = cold(["--help"], a.repeat, env)
    print(f"sky --help (cold process):              {helpt * 1000:7.1f} ms   bar < 150 ms")
    dry = cold(["launch", "--dryrun", str(task)], a.repeat, env)
    print(f"sky launch --dryrun GPU task, 3 clouds: {dry * 1000:7.1f} ms   bar < 300 ms")
    dryj = cold(["launch", "--dryrun", "--json", str(task)], a.repeat, env)
    print(f"sky launch --dryrun --json:             {dryj * 1000:7.1f} ms")

    os.environ["SKYBROKER_HOME"] = home
    from skybroker.catalog import load_catalogs
    from skybroker.optimizer import optimize
    from skybroker.task import load_tasks

    table = load_catalogs(["aws", "gcp", "azure"])
    t = load_tasks(str(task))[0]
    optimize(t, table=table)
    fast = []
    for _ in range(a.repeat * 3):
        t0 = time.perf_counter()
        plan = optimize(t, table=table)
        fast.append(time.perf_counter() - t0)
    rows = table.to_records()
    slow = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        ref = naive_plan(rows, {"A100", "H100"}, 8.0)
        slow.append(time.perf_counter() - t0)
    assert len(ref) == len(plan), (len(ref), len(plan))
    f, s = statistics.median(fast), statistics.median(slow)
    print(f"optimizer call ({len(table):,} offers -> {len(plan)} placements): {f * 1000:6.2f} ms"
          f"   bar < 10 ms")
    print(f"plain-Python scan of the same rows:     {s * 1000:7.2f} ms   -> vectorised is {s / f:.1f}x faster")
    cpu = load_tasks(str(task))[0]
    from skybroker.task import Resources

    cpu.resources = [Resources(cpus="4+")]
    cpu.num_nodes = 1
    t0 = time.perf_counter()
    big = optimize(cpu, table=table)
    print(f"optimizer, CPU task (every VM with >= 4 vCPUs): {len(big):,} placements in "
          f"{(time.perf_counter() - t0) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
