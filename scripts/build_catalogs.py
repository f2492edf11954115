#!/usr/bin/env python3
"""Regenerate catalogs/{aws,gcp,azure}.csv from the raw price files in ../shared/catalogs.

Why a script: the shipped catalogs must be reproducible from their public sources, and every
judgement call on messy data (GPU attachment on GCP, AZ ids on AWS, lenient Azure CSV) lives
here, in one place, documented in catalogs/README.md. Output is deterministic (sorted rows,
fixed float formatting, no build timestamp) so a rebuild without new data yields no diff.

Usage: python scripts/build_catalogs.py [SRC_DIR] [--out catalogs] [--clouds aws,gcp,azure]
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from skybroker.catalog.accelerators import (  # noqa: E402
    ACCELERATOR_MEMORY_GIB,
    normalize_vendor_name,
)
from skybroker.catalog.rules import (  # noqa: E402  (shared with `sky catalog refresh`)
    arch_of,
    aws_zone_name,
    gcp_gpus_for,
    gcp_standalone,
)
from skybroker.catalog.rules import format_cell as _fmt  # noqa: E402

COLUMNS = ["instance_type", "vcpus", "memory_gib", "accelerator_name", "accelerator_count",
           "accelerator_memory_gib", "arch", "region", "zone", "price", "spot_price"]

SOURCES = {
    "aws": {
        "source": "skypilot-org/skypilot-catalog v7 (commit 001367d): aws_vms_gpu_m6i.csv; "
                  "instances.vantage.sh via tsaol/aws-gpu: aws_gpu_ondemand.csv",
        "date": "2026-01-21",
        "dates": {"aws_vms_gpu_m6i.csv": "2025/2026 (catalog v7 snapshot; spot prices)",
                  "aws_gpu_ondemand.csv": "2026-01-21 (on-demand prices, preferred)"},
        "files": ["aws_vms_gpu_m6i.csv", "aws_gpu_ondemand.csv"],
    },
    "gcp": {"source": "anycloud-sh/catalog (SkyPilot catalog format): gcp_vms.csv",
            "date": "2026-05-20", "files": ["gcp_vms.csv"]},
    "azure": {"source": "anycloud-sh/catalog (SkyPilot catalog format): azure_vms.csv",
              "date": "2026-05-20", "files": ["azure_vms.csv"]},
}

Row = dict[str, object]


def _f(text: str | None) -> float | None:
    """A float, or None for an empty / non-numeric cell."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _gpu_mem_from_info(info: str) -> float | None:
    """Per-device GiB from a SkyPilot-style GpuInfo dict literal, None if absent."""
    if not info or not info.startswith("{"):
        return None
    try:
        data = ast.literal_eval(info)
        return round(data["Gpus"][0]["MemoryInfo"]["SizeInMiB"] / 1024, 3)
    except (ValueError, SyntaxError, KeyError, IndexError, TypeError):
        return None


def _offer(instance_type: str, vcpus, memory, acc_name, acc_count, acc_mem, arch, region, zone,
           price, spot) -> Row:
    return dict(zip(COLUMNS, [instance_type, vcpus, memory, acc_name or "", acc_count, acc_mem,
                              arch, region, zone or "", price, spot], strict=True))


# -------------------------------------------------------------------------------------- GCP

def build_gcp(src: Path) -> tuple[list[Row], dict]:
    """VM rows as CPU offers, plus one offer per legal (machine, GPU, count) in each zone."""
    vms: list[dict[str, str]] = []
    gpus: dict[tuple[str, int, str], tuple[float | None, float | None, float | None]] = {}
    skipped_tpu = 0
    with open(src / "gcp_vms.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["InstanceType"]:
                vms.append(r)
            elif r["AcceleratorName"].startswith("tpu-"):
                skipped_tpu += 1
            else:
                key = (r["AcceleratorName"], int(float(r["AcceleratorCount"])),
                       r["AvailabilityZone"])
                gpus[key] = (_f(r["Price"]), _f(r["SpotPrice"]), _gpu_mem_from_info(r["GpuInfo"]))
    out: list[Row] = []
    unpriced = 0
    for r in vms:
        machine, zone, region = r["InstanceType"], r["AvailabilityZone"], r["Region"]
        vcpus, mem = float(r["vCPUs"]), float(r["MemoryGiB"])
        price, spot = _f(r["Price"]), _f(r["SpotPrice"])
        arch = arch_of("gcp", machine)
        if gcp_standalone(machine):
            out.append(_offer(machine, vcpus, mem, "", None, None, arch, region, zone, price, spot))
        for gpu, count in gcp_gpus_for(machine, vcpus, mem):
            hit = gpus.get((gpu, count, zone))
            if hit is None:  # this GPU count is not offered in this zone
                unpriced += 1
                continue
            g_price, g_spot, g_mem = hit
            total = None if price is None or g_price is None else round(price + g_price, 6)
            total_spot = None if spot is None or g_spot is None else round(spot + g_spot, 6)
            out.append(_offer(machine, vcpus, mem, gpu, count,
                              g_mem or ACCELERATOR_MEMORY_GIB.get(gpu), arch, region, zone,
                              total, total_spot))
    notes = {"tpu_rows_skipped": skipped_tpu, "gpu_pairs_without_zone_price": unpriced}
    return out, notes


# -------------------------------------------------------------------------------------- AWS

def load_aws_zone_names(path: Path) -> dict[str, str]:
    """AZ id -> zone name table shipped in catalogs/aws_zone_ids.json."""
    if not path.exists():
        return {}
    return json.loads(path.read_text())["zone_names"]


def _parse_gib(text: str) -> float | None:
    m = re.match(r"^\s*([\d.]+)\s*(GiB|GB)", text or "")
    return float(m.group(1)) if m else None


# g5g is listed with an "ARM Mali" GPU by the vantage data; AWS documents NVIDIA T4G (16 GiB).
_AWS_GPU_FIXES = {"g5g": ("T4G", 16.0)}


def build_aws(src: Path, zone_table: dict[str, str]) -> tuple[list[Row], dict]:
    """Per-zone rows from the SkyPilot file, extended by the newer on-demand-only file."""
    shapes: dict[str, tuple] = {}
    rows: dict[tuple[str, str, str], Row] = {}
    duplicates = 0
    with open(src / "aws_vms_gpu_m6i.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            itype, region = r["InstanceType"], r["Region"]
            count = _f(r["AcceleratorCount"])
            shape = (float(r["vCPUs"]), float(r["MemoryGiB"]), r["AcceleratorName"], count,
                     _gpu_mem_from_info(r["GpuInfo"]) if r["AcceleratorName"] else None)
            shapes[itype] = shape
            zone = aws_zone_name(r["AvailabilityZone"], region, zone_table)
            row = _offer(itype, *shape, arch_of("aws", itype), region, zone,
                         _f(r["Price"]), _f(r["SpotPrice"]))
            key = (itype, region, zone)
            if key in rows:  # p4de lists some zones twice: keep the row that has a spot price
                duplicates += 1
                if rows[key]["spot_price"] is not None:
                    continue
            rows[key] = row
    newer: dict[tuple[str, str], float] = {}
    added = 0
    repriced: set[tuple[str, str]] = set()
    regions_in_first = {(k[0], k[1]) for k in rows}
    with open(src / "aws_gpu_ondemand.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            itype, region, price = r["InstanceType"], r["Region"], _f(r["OnDemandPrice"])
            if price is None:
                continue
            newer[(itype, region)] = price
            if (itype, region) in regions_in_first:
                continue
            if itype in shapes:
                shape = shapes[itype]
            else:
                family = itype.split(".")[0]
                count = _f(r["GpuCount"])
                name = normalize_vendor_name(r["GpuName"])
                mem = _parse_gib(r["GpuMemory"])
                if family in _AWS_GPU_FIXES:
                    name, mem = _AWS_GPU_FIXES[family]
                if mem is not None and count and count > 1 and mem > 1.5 * ACCELERATOR_MEMORY_GIB.get(name, mem):
                    mem = mem / count  # the source gives the total for big types (p5: 640 GB)
                if mem is None:
                    mem = ACCELERATOR_MEMORY_GIB.get(name)
                if count is not None and count < 1 and mem is not None:
                    mem = round(mem * count, 3)  # a fractional GPU gets its share of memory
                shape = (_f(r["vCPUs"]), _parse_gib(r["Memory"]), name, count, mem)
            rows[(itype, region, "")] = _offer(itype, *shape, arch_of("aws", itype), region, "",
                                               price, None)
            added += 1
    for key, row in rows.items():  # the on-demand file is newer (2026-01): its price wins
        p = newer.get((key[0], key[1]))
        if p is not None and row["price"] is not None and abs(p - float(row["price"])) > 1e-6:
            row["price"] = p
            repriced.add((key[0], key[1]))
    notes = {"p4de_duplicate_rows_dropped": duplicates, "rows_from_ondemand_file": added,
             "type_regions_repriced_from_newer_file": sorted(f"{t}/{r}" for t, r in repriced)}
    return list(rows.values()), notes


# ------------------------------------------------------------------------------------ Azure

def read_azure_lenient(path: Path) -> tuple[list[dict[str, str]], int]:
    """Rows as dicts; an unquoted extra Generation value ("V1,V2") is folded back in."""
    rows, repaired = [], 0
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        n = len(header)
        for cells in reader:
            if not cells:
                continue
            if len(cells) > n:
                cells = cells[: n - 1] + [",".join(cells[n - 1:])]
                repaired += 1
            elif len(cells) < n:
                cells = cells + [""] * (n - len(cells))
            rows.append(dict(zip(header, cells, strict=True)))
    return rows, repaired


def build_azure(src: Path) -> tuple[list[Row], dict]:
    raw, repaired = read_azure_lenient(src / "azure_vms.csv")
    out: list[Row] = []
    seen: set[tuple[str, str]] = set()
    for r in raw:
        itype, region = r["InstanceType"], r["Region"]
        if (itype, region) in seen or _f(r["vCPUs"]) is None:
            continue
        seen.add((itype, region))
        name = r["AcceleratorName"]
        count = _f(r["AcceleratorCount"]) if name else None
        mem = ACCELERATOR_MEMORY_GIB.get(name) if name else None
        if mem is not None and count is not None and count < 1:
            mem = round(mem * count, 3)
        out.append(_offer(itype, _f(r["vCPUs"]), _f(r["MemoryGiB"]), name, count, mem,
                          arch_of("azure", itype), region, "", _f(r["Price"]), _f(r["SpotPrice"])))
    return out, {"rows_with_extra_generation_value": repaired}


# ----------------------------------------------------------------------------------- output

def write_catalog(rows: Iterable[Row], path: Path) -> int:
    """Write rows sorted by (instance_type, accelerator, count, region, zone); atomic."""
    ordered = sorted(rows, key=lambda r: (r["instance_type"], r["accelerator_name"],
                                          r["accelerator_count"] or 0, r["region"], r["zone"]))
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in ordered:
            w.writerow([_fmt(r[c]) for c in COLUMNS])
    tmp.replace(path)
    return len(ordered)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", nargs="?", default=str(REPO.parent / "shared" / "catalogs"),
                    help="directory with the raw files (default ../shared/catalogs)")
    ap.add_argument("--out", default=str(REPO / "catalogs"), help="output directory")
    ap.add_argument("--clouds", default="aws,gcp,azure")
    args = ap.parse_args(argv)
    src, out = Path(args.src), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sources_path = out / "SOURCES.json"
    sources = json.loads(sources_path.read_text()) if sources_path.exists() else {}
    zone_table = load_aws_zone_names(REPO / "catalogs" / "aws_zone_ids.json")
    builders = {"aws": lambda: build_aws(src, zone_table), "gcp": lambda: build_gcp(src),
                "azure": lambda: build_azure(src)}
    for cloud in [c.strip() for c in args.clouds.split(",") if c.strip()]:
        rows, notes = builders[cloud]()
        n = write_catalog(rows, out / f"{cloud}.csv")
        sources[cloud] = {**SOURCES[cloud], "rows": n, "notes": notes}
        print(f"{cloud}: {n} offers -> {out / (cloud + '.csv')}")
    sources_path.write_text(json.dumps(sources, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
