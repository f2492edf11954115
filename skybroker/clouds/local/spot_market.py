"""Trace-bound spot zones for the `local` cloud: rehearse a job on a real availability trace.

Why: the managed-job controller must be testable end to end with real processes and real
preemptions, and users want to "rehearse my job on last month's trace". A zone of the local
cloud bound to a trace refuses spot launches (a real `CapacityError`) while the trace says
unavailable, and kills the processes of its running spot clusters when capacity disappears
(`query` then reports them PREEMPTED). On-demand is always available.

Config (`<home>/config.yaml`)::

    local:
      spot_markets:
        local-b:
          trace: traces/spot-traces/availability/1-node/aws-10-26-2022/us-west-2a_k80_1.json
          seconds_per_tick: 1      # wall seconds per trace tick (time compression)
          start_tick: 100          # trace tick the market opens at
          epoch: 1795313263.0      # optional: wall time of start_tick (default: first use)

Relative trace paths are resolved against the home, then the current directory. Trace tick k
(k >= start_tick) covers wall time [epoch + (k - start_tick) * spt, ... + spt). Past the end of
the trace spot is unavailable (as in replay). A spot cluster launched at tick k is preempted at
the first unavailable tick after k; a detached reaper process (tagged like the cluster's nodes,
so `terminate` kills it too) kills the cluster's processes at that wall time, and `query`
double-checks from the trace so a late reaper never hides a preemption.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EPOCHS_FILE = "local_spot_markets.json"
SPOT_FILE = "spot.json"  # in the cluster's node directory: zone, launch tick, kill time
PREEMPTED_MARK = "preempted"


@dataclass
class MarketZone:
    """One trace-bound zone: an availability trace on a wall-clock time axis."""

    zone: str
    counts: Any  # numpy int array (trace counts)
    gap_s: float  # trace seconds per tick (what one tick means to the job)
    seconds_per_tick: float  # wall seconds per tick
    start_tick: int
    epoch: float
    trace_path: str = ""

    def tick_at(self, now: float) -> int:
        """The absolute trace tick in effect at wall time ``now``."""
        return self.start_tick + math.floor((now - self.epoch) / self.seconds_per_tick + 1e-9)

    def wall_of_tick(self, tick: int) -> float:
        return self.epoch + (tick - self.start_tick) * self.seconds_per_tick

    def available_tick(self, tick: int, nodes: int = 1) -> bool:
        return 0 <= tick < len(self.counts) and int(self.counts[tick]) >= max(nodes, 1)

    def next_unavailable(self, tick: int, nodes: int = 1) -> int:
        """First tick >= ``tick`` without capacity for ``nodes`` (the trace's end counts)."""
        import numpy as np

        n = len(self.counts)
        if tick >= n:
            return tick
        lo = max(tick, 0)
        bad = np.flatnonzero(self.counts[lo:] < max(nodes, 1))
        return lo + int(bad[0]) if bad.size else n

    def window(self, start: int, length: int, nodes: int = 1) -> Any:
        """Availability (bool array) of ticks [start, start + length): what replay is given."""
        import numpy as np

        idx = np.arange(start, start + length)
        ok = (idx >= 0) & (idx < len(self.counts))
        out = np.zeros(length, dtype=bool)
        out[ok] = self.counts[idx[ok]] >= max(nodes, 1)
        return out


def _nodes_dir() -> Path:
    from skybroker.clouds.local.provisioner import nodes_dir

    return nodes_dir()


def _resolve_trace(raw: str) -> Path:
    from skybroker.config import home

    p = Path(raw).expanduser()
    if p.is_absolute():
        return p
    for base in (home(), Path.cwd()):
        if (base / p).exists():
            return base / p
    return home() / p


def _epoch_for(zone: str, cfg: dict[str, Any]) -> float:
    """The configured epoch, else the one recorded at the market's first use (all agree)."""
    if cfg.get("epoch") is not None:
        return float(cfg["epoch"])
    from skybroker.config import home

    path = home() / EPOCHS_FILE
    key = f"{zone}|{cfg.get('trace')}|{cfg.get('start_tick', 0)}|{cfg.get('seconds_per_tick', 1)}"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    if key not in data:
        data[key] = time.time()
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
    return float(data[key])


_CACHE: dict[tuple, TraceMarket | None] = {}


def configured_market() -> TraceMarket | None:
    """The market of `<home>/config.yaml` (`local.spot_markets`), None when none is bound.

    Cached per (home, config mtime), so the provisioner can ask on every call.
    """
    from skybroker.config import home, load_config

    cfg_path = home() / "config.yaml"
    try:
        mtime = cfg_path.stat().st_mtime_ns
    except OSError:
        return None
    key = (str(cfg_path), mtime)
    if key in _CACHE:
        return _CACHE[key]
    raw = ((load_config().get("local") or {}).get("spot_markets")) or {}
    market = TraceMarket.from_config(raw) if raw else None
    _CACHE.clear()
    _CACHE[key] = market
    return market


class TraceMarket:
    """The local cloud's spot market: trace-bound zones; unbound zones always have capacity."""

    def __init__(self, zones: dict[str, MarketZone]) -> None:
        self.zones = zones

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> TraceMarket:
        from skybroker.clouds.local.provisioner import ZONES
        from skybroker.errors import SkyError
        from skybroker.traces import load_trace

        zones = {}
        for zone, cfg in raw.items():
            where = f"config local.spot_markets.{zone}"
            if zone not in ZONES:
                raise SkyError(f"{where}: the local cloud has zones {ZONES}, not {zone!r}")
            if not isinstance(cfg, dict) or not cfg.get("trace"):
                raise SkyError(f"{where}: needs at least `trace: <path>`")
            spt = float(cfg.get("seconds_per_tick", 1))
            if not spt > 0:
                raise SkyError(f"{where}: seconds_per_tick must be > 0, got {spt}")
            path = _resolve_trace(str(cfg["trace"]))
            trace = load_trace(path)
            start = int(cfg.get("start_tick", 0))
            if not 0 <= start < len(trace):
                raise SkyError(f"{where}: start_tick {start} outside the trace (0..{len(trace) - 1})")
            zones[zone] = MarketZone(zone, trace.counts, float(trace.gap_s), spt, start,
                                     _epoch_for(zone, cfg), str(path))
        return cls(zones)

    # ---- the provisioner's SpotMarket protocol ----

    def available(self, zone: str | None, now: float, nodes: int = 1) -> bool:
        mz = self.zones.get(zone or "")
        return True if mz is None else mz.available_tick(mz.tick_at(now), nodes)

    def preempted(self, cluster: Any, now: float) -> bool:
        """Whether capacity disappeared since the cluster's launch (kills leftovers if so)."""
        mz = self.zones.get(cluster.zone or "")
        if mz is None:
            return False
        base = _nodes_dir() / cluster.cluster_name
        rec = _read_spot(base)
        if rec is None:
            return False
        gone = (base / PREEMPTED_MARK).exists() or \
            mz.next_unavailable(int(rec["tick"]), int(rec.get("nodes", 1))) <= mz.tick_at(now)
        if gone:
            _kill(str(rec.get("tag_prefix", "")))
        return gone

    def launched(self, info: Any, now: float) -> None:
        """Record the spot cluster's launch tick and start its reaper."""
        mz = self.zones.get(info.zone or "")
        if mz is None:
            return
        from skybroker.clouds.local.provisioner import _tag_prefix

        nodes = len(info.nodes)
        tick = mz.tick_at(now)
        kill_tick = mz.next_unavailable(tick, nodes)
        kill_at = mz.wall_of_tick(kill_tick)
        base = _nodes_dir() / info.cluster_name
        prefix = _tag_prefix(info.cluster_name)
        rec = {"zone": mz.zone, "tick": tick, "nodes": nodes, "kill_tick": kill_tick,
               "kill_at": kill_at, "launched_at": now, "tag_prefix": prefix}
        (base / PREEMPTED_MARK).unlink(missing_ok=True)
        (base / SPOT_FILE).write_text(json.dumps(rec))
        env = dict(os.environ, SKYBROKER_NODE_TAG=prefix + "spot-reaper")
        subprocess.Popen([sys.executable, "-m", "skybroker.clouds.local.spot_market", "reap",
                          str(base), prefix, repr(kill_at), repr(now)],
                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)


def _read_spot(base: Path) -> dict[str, Any] | None:
    try:
        return json.loads((base / SPOT_FILE).read_text())
    except (OSError, ValueError):
        return None


def _kill(prefix: str) -> int:
    if not prefix:
        return 0
    from skybroker.runtime.agent import kill_env

    n = 0
    for _ in range(20):
        k = kill_env("SKYBROKER_NODE_TAG", prefix, prefix=True)
        n += k
        if k == 0:
            break
        time.sleep(0.01)
    return n


def reap(base: str, prefix: str, kill_at: float, launched_at: float) -> int:
    """The reaper: sleep until capacity disappears, then preempt (kill) the cluster."""
    root = Path(base)
    while True:
        rec = _read_spot(root)
        if rec is None or float(rec.get("launched_at", -1)) != launched_at:
            return 0  # terminated, or relaunched under the same name: not ours any more
        left = kill_at - time.time()
        if left <= 0:
            break
        time.sleep(min(left, 0.5))
    (root / PREEMPTED_MARK).write_text(str(time.time()))
    _kill(prefix)
    return 0


if __name__ == "__main__":  # python -m skybroker.clouds.local.spot_market reap ...
    if len(sys.argv) == 6 and sys.argv[1] == "reap":
        sys.exit(reap(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])))
    sys.exit(f"usage: {sys.argv[0]} reap <cluster-dir> <tag-prefix> <kill-at> <launched-at>")
