"""Judgement calls on cloud shapes shared by the build script and `sky catalog refresh`.

Why here: the shipped catalogs (scripts/build_catalogs.py, from recorded files) and the
refreshed ones (skybroker.catalog.refresh, from the clouds' APIs) must attach GPUs, name
architectures and format cells the same way, or a refresh would silently change which offers
exist. One copy of each rule, imported by both.
"""

from __future__ import annotations

import re

# ------------------------------------------------------------------------------------- arch

_AWS_ARM = re.compile(r"^[a-z]+\d+[a-z]*g[a-z]*\.")  # m6g., c7gn., g5g., is4gen., x2gd.
_GCP_ARM = re.compile(r"^(t2a|c4a|n4a|c3a|a4x)-")
_AZURE_ARM = re.compile(r"^Standard_[A-Z]+\d+[a-z]*p[a-z]*_v\d", re.IGNORECASE)


def arch_of(cloud: str, instance_type: str) -> str:
    """x86_64 or arm64 from naming conventions (Graviton 'g', GCP Tau/Axion, Azure 'p')."""
    pattern = {"aws": _AWS_ARM, "gcp": _GCP_ARM, "azure": _AZURE_ARM}[cloud]
    return "arm64" if pattern.match(instance_type) else "x86_64"


# -------------------------------------------------------------------------------------- GCP

# GPU -> (machine-type regex, count taken from the name or fixed). Counts must also exist as
# a GPU offer in that zone (GPU prices are per (name, count), for the whole count).
GCP_FIXED_FAMILIES: list[tuple[str, re.Pattern[str]]] = [
    ("A100", re.compile(r"^a2-highgpu-(\d+)g$")),
    ("A100", re.compile(r"^a2-megagpu-(\d+)g$")),
    ("A100-80GB", re.compile(r"^a2-ultragpu-(\d+)g$")),
    ("H100", re.compile(r"^a3-highgpu-(\d+)g$")),
    ("H100", re.compile(r"^a3-edgegpu-(\d+)g(-nolssd)?$")),
    ("H100-MEGA", re.compile(r"^a3-megagpu-(\d+)g$")),
    ("H200", re.compile(r"^a3-ultragpu-(\d+)g(-nolssd)?$")),
    ("B200", re.compile(r"^a4-highgpu-(\d+)g$")),
]
# g2-standard-N: L4 count by size (GCP's G2 shapes).
G2_L4 = {4: 1, 8: 1, 12: 1, 16: 1, 32: 1, 24: 2, 48: 4, 96: 8}
# n1 + GPU: GCP's documented maxima (vCPUs, memory GiB) per GPU count.
N1_LIMITS: dict[str, dict[int, tuple[int, int]]] = {
    "T4": {1: (48, 312), 2: (48, 312), 4: (96, 624)},
    "P4": {1: (24, 156), 2: (48, 312), 4: (96, 624)},
    "V100": {1: (12, 78), 2: (24, 156), 4: (48, 312), 8: (96, 624)},
    "P100": {1: (16, 104), 2: (32, 208), 4: (64, 208)},
}
_N1_GPU_OK = re.compile(r"^n1-(standard|highmem|highcpu)-\d+$")
# Host shapes that exist only to serve TPUs, or that never run without their GPUs.
GCP_NOT_STANDALONE = re.compile(r"^(a\d|g2)-|^n\w*-\d+-\d+")


def gcp_gpus_for(machine: str, vcpus: float, memory: float) -> list[tuple[str, int]]:
    """Every (gpu, count) GCP lets this machine type carry."""
    for gpu, pattern in GCP_FIXED_FAMILIES:
        m = pattern.match(machine)
        if m:
            return [(gpu, int(m.group(1)))]
    m = re.match(r"^g2-standard-(\d+)$", machine)
    if m:
        count = G2_L4.get(int(m.group(1)))
        return [("L4", count)] if count else []
    if _N1_GPU_OK.match(machine):
        return [(gpu, n) for gpu, limits in N1_LIMITS.items()
                for n, (max_cpu, max_mem) in limits.items()
                if vcpus <= max_cpu and memory <= max_mem]
    return []


def gcp_standalone(machine: str) -> bool:
    """Whether the machine type is offered without accelerators (a CPU-only row)."""
    return not GCP_NOT_STANDALONE.match(machine)


# -------------------------------------------------------------------------------------- AWS

def aws_zone_name(zone_id: str, region: str, table: dict[str, str]) -> str:
    """Fixed table first; otherwise the convention azN -> region + letter N (a=1)."""
    if zone_id in table:
        return table[zone_id]
    m = re.match(r"^[a-z0-9]+-az(\d+)$", zone_id)
    if not m:
        return zone_id
    return region + "abcdefghijklmnopqrstuvwxyz"[int(m.group(1)) - 1]


# ----------------------------------------------------------------------------------- output

def format_cell(value: object) -> str:
    """Catalog cell text: '' for None, floats to 6 places without trailing zeros."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value)


def row_sort_key(r: dict) -> tuple:
    """The catalogs' row order: (instance_type, accelerator, count, region, zone)."""
    return (r["instance_type"], r["accelerator_name"] or "", r["accelerator_count"] or 0,
            r["region"], r["zone"] or "")
