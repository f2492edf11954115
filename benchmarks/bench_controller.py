"""One jobs controller holding 1,000 concurrent managed jobs against a fast fake cloud.

Run: python benchmarks/bench_controller.py [--jobs 1000] [--tick 5] [--poll 2]

The fake cloud is a test double of a *cloud*, not of the controller: zones whose spot capacity
comes and goes (a random on/off process per zone), spot launches refused with a real
`CapacityError` while a zone has none, running spot clusters preempted when it disappears, and
tasks that finish once they have done their work (at the job's time scale, after the restart
overhead). The real controller (scheduler, runners, the policy, the state DB) runs in process.

Figures: peak RSS; decision lag (how late each job's on-tick decision ran after it was due);
preemption -> relaunch decision latency (from the moment the fake provider reports a spot
cluster preempted to the controller's decision on it); jobs finished and deadlines met.
Bars (issue 6): RSS < 500 MB with 1,000 jobs; decisions on time; preemption -> decision < 5 s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class FakeCloud:
    """Zones with flapping spot capacity; clusters are dict entries; launches are instant."""

    def __init__(self, zones: int, mean_up_s: float, mean_down_s: float, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.zones = [f"fake-{i}" for i in range(zones)]
        self.up = {z: True for z in self.zones}
        self.mean = (mean_up_s, mean_down_s)
        self.next_flip = {z: time.time() + self.rng.expovariate(1 / mean_up_s) for z in self.zones}
        self.clusters: dict[str, dict] = {}
        self.preempted_at: dict[str, float] = {}  # cluster -> when the provider reported it

    def tick(self, now: float) -> None:
        with self.lock:
            for z in self.zones:
                if now >= self.next_flip[z]:
                    self.up[z] = not self.up[z]
                    self.next_flip[z] = now + self.rng.expovariate(1 / self.mean[0 if self.up[z] else 1])
                    if not self.up[z]:
                        for name, c in self.clusters.items():
                            if c["spot"] and c["zone"] == z and not c["preempted"]:
                                c["preempted"] = True
                                self.preempted_at[name] = now


class FakeBackend:
    """The controller's backend over FakeCloud (same interface as jobs.backend.RealBackend)."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self.latencies: list[float] = []

    def launch(self, job, spot, name, blocked, env):
        from skybroker.errors import CapacityError
        from skybroker.jobs.backend import Launched

        bad = {b[2] for b in blocked}
        with self.cloud.lock:
            if spot:
                zones = [z for z in self.cloud.zones if self.cloud.up[z] and z not in bad] or \
                    [z for z in self.cloud.zones if self.cloud.up[z]]
                if not zones:
                    raise CapacityError("fake cloud: no spot capacity in any zone", "zone")
                zone = zones[0]
            else:
                zone = self.cloud.zones[0]
            price = 0.3 if spot else 1.0
            self.cloud.clusters[name] = {
                "spot": spot, "zone": zone, "preempted": False, "start": float(env["SKYBROKER_RUN_STARTED_AT"]),
                "w0": float(env["SKYBROKER_WORK_DONE_S"]), "d": float(env["SKYBROKER_RESTART_OVERHEAD_S"]),
                "total": float(env["SKYBROKER_JOB_DURATION_S"]), "scale": float(env["SKYBROKER_JOB_TIME_SCALE"]),
                "job": job.id}
        pl = {"cloud": "fake", "region": "fake", "zone": zone, "instance_type": "fake.1",
              "spot": spot, "num_nodes": 1, "hourly_cost": price, "price_spot": 0.3, "price_od": 1.0}
        return Launched(name, {"cluster_name": name, "cloud": "fake"}, pl, 1, zone, price)

    def observe(self, job, want_task=True):
        from skybroker.jobs.backend import Observation

        now = time.time()
        with self.cloud.lock:
            c = self.cloud.clusters.get(job.cluster)
            if c is None:
                return Observation(False, False, None)
            if c["preempted"]:
                return Observation(False, True, None)
            w = c["w0"] + max(0.0, (now - c["start"]) * c["scale"] - c["d"])
            done = w >= c["total"]
        return Observation(True, False, "SUCCEEDED" if done else "RUNNING", None)

    def resubmit(self, job, env):
        return 1

    def terminate(self, name, info, log_dir):
        """Called right after the decision on a preempted cluster was committed."""
        with self.cloud.lock:
            self.cloud.clusters.pop(name, None)
            t = self.cloud.preempted_at.pop(name, None)
            if t is not None:
                self.latencies.append(time.time() - t)

    def exists(self, name, job_id):
        return name in self.cloud.clusters


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q / 100 * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--tick", type=float, default=5.0, help="decision tick (s)")
    ap.add_argument("--poll", type=float, default=2.0, help="poll between ticks (s)")
    ap.add_argument("--duration", type=float, default=60.0, help="work per job (s)")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="bench-controller-")
    os.environ["SKYBROKER_HOME"] = home
    Path(home, "config.yaml").write_text(
        f"jobs:\n  tick_seconds: {args.tick}\n  poll_seconds: {args.poll}\n")

    from skybroker import jobs
    from skybroker.jobs import state as S
    from skybroker.jobs.controller import Controller
    from skybroker.task import Task

    base_rss = rss_mb()
    task = Task.from_yaml_str("name: b\nresources:\n  cloud: local\nrun: echo\n")
    rng = random.Random(3)
    t0 = time.time()
    ids = []
    for i in range(args.jobs):
        dur_h = args.duration / 3600
        dl_h = dur_h * rng.uniform(1.6, 3.0)
        policy = rng.choice(["uniform_progress", "greedy", "uniform_progress", "failover"])
        if policy == "failover":
            ids.append(jobs.launch(task, f"b{i}", policy="failover", duration_h=dur_h,
                                   start_controller=False))
        else:
            ids.append(jobs.launch(task, f"b{i}", deadline_h=dl_h, duration_h=dur_h,
                                   restart_overhead_h=3 / 3600, policy=policy,
                                   start_controller=False))
    submit_s = time.time() - t0
    cloud = FakeCloud(zones=4, mean_up_s=25.0, mean_down_s=8.0)
    backend = FakeBackend(cloud)
    ctl = Controller(backend=backend, workers=args.workers, idle_exit_s=None)
    th = threading.Thread(target=ctl.serve, daemon=True)
    start = time.time()
    th.start()
    peak = rss_mb()
    while time.time() - start < args.timeout:
        cloud.tick(time.time())
        peak = max(peak, rss_mb())
        time.sleep(0.1)
        if len(ctl.runners) == 0 and time.time() - start > 2:
            break
    wall = time.time() - start
    ctl.shutdown()
    rows = [S.get(i) for i in ids]
    status: dict[str, int] = {}
    for r in rows:
        status[r.status] = status.get(r.status, 0) + 1
    met = sum(1 for r in rows if r.status == "SUCCEEDED" and r.params.get("deadline_s")
              and (r.ended_at - r.params["t0"]) <= r.params["deadline_s"] + args.tick)
    with_dl = sum(1 for r in rows if r.params.get("deadline_s"))
    lags = [lag for _, lag in ctl.lags]
    steady = [lag for t, lag in ctl.lags if t >= 2]  # after the start-up burst of launches
    lat = backend.latencies
    print(f"jobs: {args.jobs} (submitted in {submit_s:.1f} s), tick {args.tick:g} s, poll "
          f"{args.poll:g} s, work {args.duration:g} s each, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"ran for {wall:.1f} s; statuses: {status}")
    print(f"deadline jobs finished by their deadline (+1 tick): {met}/{with_dl}")
    print(f"peak RSS: {peak:.0f} MB (before jobs: {base_rss:.0f} MB)   bar: < 500 MB")
    print(f"decision lag over {len(lags)} on-tick decisions: p50 {pct(lags, 50) * 1000:.0f} ms, "
          f"p99 {pct(lags, 99) * 1000:.0f} ms, max {max(lags, default=float('nan')) * 1000:.0f} ms "
          f"(mean {statistics.fmean(lags) * 1000 if lags else float('nan'):.0f} ms)")
    print(f"  steady state (ticks >= 2, {len(steady)} decisions): p50 {pct(steady, 50) * 1000:.0f} ms, "
          f"p99 {pct(steady, 99) * 1000:.0f} ms, max {max(steady, default=float('nan')) * 1000:.0f} ms")
    print(f"preemption -> decision over {len(lat)} preemptions: p50 {pct(lat, 50):.2f} s, "
          f"p99 {pct(lat, 99):.2f} s, max {max(lat, default=float('nan')):.2f} s   bar: < 5 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
