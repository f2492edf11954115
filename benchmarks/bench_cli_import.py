#!/usr/bin/env python3
"""`sky --help` wall time in a fresh process, with every cloud SDK installed.

Why: boto3, google-cloud-compute and azure-mgmt-* cost hundreds of ms to seconds to import;
the CLI must not pay for them until a command needs a cloud. This prints the wall time of
cold `sky --help` runs (bar: < 150 ms), the SDKs' own import cost for comparison, and fails
if any SDK module was loaded by `--help`.

Usage: python benchmarks/bench_cli_import.py [--repeat 15]
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
SDK_ROOTS = ("boto3", "botocore", "google", "azure")
BAR_MS = 150.0

_CHECK = f"""
import json, sys
sys.argv = ["sky", "--help"]
from skybroker.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {SDK_ROOTS!r})))
"""

_SDK = """
import time
t = time.perf_counter()
import {mod}
print(time.perf_counter() - t)
"""


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, check=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    opts = ap.parse_args()
    env = dict(os.environ, SKYBROKER_HOME=tempfile.mkdtemp(prefix="bench-home-"),
               PYTHONPATH=str(REPO))
    help_cmd = [sys.executable, "-m", "skybroker", "--help"]
    run(help_cmd, env)  # byte-compile once, like any installed package
    times = []
    for _ in range(opts.repeat):
        t0 = time.perf_counter()
        run(help_cmd, env)
        times.append((time.perf_counter() - t0) * 1000)
    bare = []
    for _ in range(opts.repeat):
        t0 = time.perf_counter()
        run([sys.executable, "-c", "pass"], env)
        bare.append((time.perf_counter() - t0) * 1000)
    loaded = json.loads(run([sys.executable, "-c", _CHECK], env).stdout.strip().splitlines()[-1])
    sdks = {}
    for mod in ("boto3", "google.cloud.compute_v1", "azure.mgmt.compute", "azure.mgmt.network"):
        try:
            sdks[mod] = round(float(run([sys.executable, "-c", _SDK.format(mod=mod)], env).stdout) * 1000, 1)
        except subprocess.CalledProcessError:
            sdks[mod] = None  # not installed
    med = statistics.median(times)
    print(json.dumps({
        "sky_help_ms": {"median": round(med, 1), "min": round(min(times), 1), "max": round(max(times), 1)},
        "python_startup_ms": {"median": round(statistics.median(bare), 1)},
        # robust to a loaded machine: what `sky --help` adds on top of a bare interpreter
        "help_minus_startup_ms": round(med - statistics.median(bare), 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "sdk_import_ms": sdks, "sdk_modules_loaded_by_help": loaded, "bar_ms": BAR_MS,
    }, indent=1))
    ok = med < BAR_MS and not loaded
    print("PASS" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
