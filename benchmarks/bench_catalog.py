#!/usr/bin/env python3
"""Catalog load and query figures: cold CSV parse vs compiled cache, vectorised filters vs a
plain-Python list-of-dicts filter over the same offers.

Loads are timed in fresh processes (a new SKYBROKER_HOME for the cold case), because the
point of the cache is the next cold `sky` process, not a warm interpreter.

Usage: python benchmarks/bench_catalog.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CLOUDS = ["aws", "gcp", "azure"]

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numpy  # noqa: F401
t1 = time.perf_counter()
from skybroker.catalog import load_catalogs
from skybroker.catalog import store  # noqa: F401
t2 = time.perf_counter()
t = load_catalogs(%r)
t3 = time.perf_counter()
print(json.dumps({"numpy_import": t1 - t0, "module_import": t2 - t1, "load": t3 - t2,
                  "rows": len(t)}))
"""


# Byte-compiled modules, as an installed package has them: this sandbox exports
# PYTHONDONTWRITEBYTECODE=1, which would make every child recompile every module it imports.
PYCACHE = Path(tempfile.gettempdir()) / "skybroker-bench-pycache"


def _child(home: str, clouds: list[str]) -> dict:
    env = {**os.environ, "SKYBROKER_HOME": home, "PYTHONPATH": str(REPO),
           "PYTHONPYCACHEPREFIX": str(PYCACHE)}
    env.pop("SKYBROKER_CATALOG_DIR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CHILD % (clouds,)], env=env, check=True,
                         capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["process"] = time.perf_counter() - start
    return res


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _bench(fn, repeat: int) -> float:
    fn()  # warm-up (first-call numpy dispatch overhead)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return _median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    ms = 1e3

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(machine: {os.cpu_count()} CPUs, load average {load:.1f} when started)")
    print("== load (fresh processes; median of", args.repeat, "runs) ==")
    cold, cached = [], []
    with tempfile.TemporaryDirectory() as home:
        _child(home, CLOUDS)  # warm the byte-code cache and the OS page cache
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as home:
            cold.append(_child(home, CLOUDS))
            cached.append(_child(home, CLOUDS))  # second process: compiled cache on disk
    rows = cold[0]["rows"]
    c_load = _median([r["load"] for r in cold])
    k_load = _median([r["load"] for r in cached])
    print(f"offers: {rows:,} ({', '.join(CLOUDS)})")
    print(f"numpy import:                {_median([r['numpy_import'] for r in cached]) * ms:8.1f} ms")
    print(f"skybroker.catalog import:    {_median([r['module_import'] for r in cached]) * ms:8.1f} ms")
    print(f"cold load (parse CSV+cache): {c_load * ms:8.1f} ms   process {_median([r['process'] for r in cold]) * ms:7.1f} ms")
    print(f"cached load (compiled file): {k_load * ms:8.1f} ms   process {_median([r['process'] for r in cached]) * ms:7.1f} ms")
    print(f"speed-up cached vs cold:     {c_load / k_load:8.1f} x")

    from skybroker.catalog import load_catalogs

    with tempfile.TemporaryDirectory() as home:
        os.environ["SKYBROKER_HOME"] = home
        table = load_catalogs(CLOUDS)
        records = table.to_records()  # the plain-Python baseline: list of dicts
        us = [r for r in table.unique("region") if r.startswith("us")]

        queries = {
            "A100:8, >=32 vCPU, >=256 GiB, spot": (
                lambda: table.mask(accelerator="A100", accelerator_count=8, min_vcpus=32,
                                   min_memory_gib=256, spot=True),
                lambda: [r for r in records if r["accelerator_name"] == "A100"
                         and r["accelerator_count"] == 8 and (r["vcpus"] or 0) >= 32
                         and (r["memory_gib"] or 0) >= 256 and r["spot_price"] is not None]),
            "CPU-only, >=8 vCPU, >=32 GiB, us-* regions": (
                lambda: table.mask(accelerator="", min_vcpus=8, min_memory_gib=32,
                                   region=us),
                lambda: [r for r in records if not r["accelerator_name"]
                         and (r["vcpus"] or 0) >= 8 and (r["memory_gib"] or 0) >= 32
                         and r["region"].startswith("us")]),
            "any GPU, cheapest 20 on-demand": (
                lambda: table.take(table.mask(min_accelerator_count=1, on_demand=True).nonzero()[0]).sort_by_price()[:20],
                lambda: sorted((r for r in records if (r["accelerator_count"] or 0) >= 1
                                and r["price"] is not None), key=lambda r: r["price"])[:20]),
        }
        print(f"\n== filters over the full table ({len(table):,} offers; median of {args.repeat * 4}) ==")
        print(f"{'query':46s} {'numpy':>10s} {'list-of-dicts':>14s} {'ratio':>7s}")
        for name, (vec, plain) in queries.items():
            v = _bench(vec, args.repeat * 4)
            p = _bench(plain, args.repeat)
            print(f"{name:46s} {v * ms:8.2f}ms {p * ms:12.2f}ms {p / v:6.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
