"""scripts/build_catalogs.py: fixture inputs (every judgement call) and real known prices."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "catalogs"


def _load_build():
    spec = importlib.util.spec_from_file_location("build_catalogs", REPO / "scripts" / "build_catalogs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


build = _load_build()

GCP = """InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice
a2-highgpu-1g,12.0,85.0,,,,us-central1,us-central1-a,0.73948,0.36975
a2-highgpu-2g,24.0,170.0,,,,us-central1,us-central1-a,1.47896,0.7395
n1-standard-8,8.0,30.0,,,,us-central1,us-central1-a,0.38,0.13954
n1-standard-8,8.0,30.0,,,,us-central1,us-central1-b,0.38,
n1-standard-96,96.0,360.0,,,,us-central1,us-central1-a,4.56,1.6
g2-standard-24,24.0,96.0,,,,us-central1,us-central1-a,1.0,0.5
t2a-standard-4,4.0,16.0,,,,us-central1,us-central1-a,0.154,0.04474
n1-340-48-tpu,48.0,340.0,,,,us-central1,us-central1-a,3.0,1.0
,,,A100,1,"{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]}",us-central1,us-central1-a,2.93391,1.4341
,,,T4,1,"{'Gpus': [{'MemoryInfo': {'SizeInMiB': 16384}}]}",us-central1,us-central1-a,0.35,0.1654
,,,T4,4,"{'Gpus': [{'MemoryInfo': {'SizeInMiB': 16384}}]}",us-central1,us-central1-a,1.4,0.6616
,,,T4,1,"{'Gpus': [{'MemoryInfo': {'SizeInMiB': 16384}}]}",us-central1,us-central1-b,0.35,0.1654
,,,L4,2,"{'Gpus': [{'MemoryInfo': {'SizeInMiB': 24576}}]}",us-central1,us-central1-a,1.12008,0.4686
,,,tpu-v2-8,1,tpu-v2-8,us-central1,us-central1-b,4.5,1.35
"""

AWS_A = """InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone
p3.2xlarge,V100,1.0,8.0,61.0,"{'Gpus': [{'Name': 'V100', 'Count': 1, 'MemoryInfo': {'SizeInMiB': 16384}}], 'TotalGpuMemoryInMiB': 16384}",3.06,0.5197,us-east-1,use1-az1
p3.2xlarge,V100,1.0,8.0,61.0,"{'Gpus': [{'Name': 'V100', 'Count': 1, 'MemoryInfo': {'SizeInMiB': 16384}}], 'TotalGpuMemoryInMiB': 16384}",3.06,,us-east-1,use1-az3
p4de.24xlarge,A100-80GB,8.0,96.0,1152.0,"{'Gpus': [{'Name': 'A100', 'Count': 8, 'MemoryInfo': {'SizeInMiB': 81920}}]}",40.96575,7.8074,us-east-1,use1-az4
p4de.24xlarge,A100-80GB,8.0,96.0,1152.0,"{'Gpus': [{'Name': 'A100', 'Count': 8, 'MemoryInfo': {'SizeInMiB': 81920}}]}",40.96575,,us-east-1,use1-az4
p5e.48xlarge,H200,8.0,192.0,2048.0,"{'Gpus': [{'Name': 'H200', 'Count': 8, 'MemoryInfo': {'SizeInMiB': 144384}}]}",,14.925,ap-southeast-3,apse3-az1
m6i.large,,,2.0,8.0,,0.096,0.04,us-east-1,use1-az9
"""

AWS_B = """InstanceType,GpuName,GpuCount,GpuMemory,vCPUs,Memory,Region,OnDemandPrice
p4de.24xlarge,NVIDIA A100,8,640 GB HBM2e,96,1152 GiB,us-east-1,27.44705
p3.2xlarge,NVIDIA V100,1,16 GB HBM2,8,61 GB,us-west-2,3.06
g5g.xlarge,ARM Mali-G78MP12,1,4 GB,4,8 GB,us-east-1,0.42
p6-b200.48xlarge,NVIDIA B200 Blackwell,8,1432 GB HBM3e,192,2048 GiB,us-east-1,113.9328
g6f.large,NVIDIA L40,0.125,48 GB GDDR6,2,8 GB,us-east-1,0.202
"""

AZURE = """InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,Generation
Standard_A1_v2,,,1,2,,0.05,0.00924,australiacentral,V1
Standard_B12ms,,,12,48,,0.634,,australiacentral,V1,V2
Standard_NC6s_v3,V100,1,6,112,V100,3.06,0.3,eastus,V1,V2
Standard_D4ps_v5,,,4,16,,0.154,0.03,eastus,V2
Standard_NV6ads_A10_v5,A10,0.167,6,55,A10,0.454,0.09,eastus,V2
"""


@pytest.fixture
def src(tmp_path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    (d / "gcp_vms.csv").write_text(GCP)
    (d / "aws_vms_gpu_m6i.csv").write_text(AWS_A)
    (d / "aws_gpu_ondemand.csv").write_text(AWS_B)
    (d / "azure_vms.csv").write_text(AZURE)
    return d


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _find(rows, **kw):
    return [r for r in rows if all(r[k] == v for k, v in kw.items())]


@pytest.fixture
def built(src, tmp_path) -> Path:
    out = tmp_path / "out"
    assert build.main([str(src), "--out", str(out)]) == 0
    return out


def test_schema_header_and_sources(built):
    for cloud in ("aws", "gcp", "azure"):
        with open(built / f"{cloud}.csv") as fh:
            assert fh.readline().strip().split(",") == build.COLUMNS
    meta = json.loads((built / "SOURCES.json").read_text())
    assert set(meta) == {"aws", "gcp", "azure"}
    assert meta["gcp"]["date"] == "2026-05-20" and "anycloud" in meta["gcp"]["source"]


def test_gcp_gpu_attached_with_zone_prices(built):
    rows = _rows(built / "gcp.csv")
    (a2,) = _find(rows, instance_type="a2-highgpu-1g")
    assert a2["accelerator_name"] == "A100" and a2["accelerator_count"] == "1"
    assert float(a2["price"]) == pytest.approx(0.73948 + 2.93391)  # ~$3.67, the public price
    assert float(a2["spot_price"]) == pytest.approx(0.36975 + 1.4341)
    assert a2["accelerator_memory_gib"] == "40"
    # no A100:2 row in that zone -> no a2-highgpu-2g offer; a2 never appears without its GPU
    assert not _find(rows, instance_type="a2-highgpu-2g")
    # n1 keeps its CPU-only offer and gains T4:1 and T4:4 (GPU row priced for the count)
    n1a = _find(rows, instance_type="n1-standard-8", zone="us-central1-a")
    got = {(r["accelerator_name"], r["accelerator_count"]): float(r["price"]) for r in n1a}
    assert got == {("", ""): 0.38, ("T4", "1"): pytest.approx(0.73), ("T4", "4"): pytest.approx(1.78)}
    # zone b: VM has no spot price -> the GPU offer has none either
    (n1b,) = _find(rows, instance_type="n1-standard-8", zone="us-central1-b", accelerator_name="T4")
    assert n1b["spot_price"] == ""
    # n1-standard-96 exceeds the T4:1 limits (48 vCPUs) but fits T4:4 (96 vCPUs, 624 GiB)
    big = {r["accelerator_count"] for r in _find(rows, instance_type="n1-standard-96", accelerator_name="T4")}
    assert big == {"4"}
    (g2,) = _find(rows, instance_type="g2-standard-24")
    assert (g2["accelerator_name"], g2["accelerator_count"]) == ("L4", "2")
    assert _find(rows, instance_type="t2a-standard-4")[0]["arch"] == "arm64"
    assert not _find(rows, instance_type="n1-340-48-tpu")  # TPU host shape
    assert not [r for r in rows if r["accelerator_name"].startswith("tpu")]


def test_aws_zones_duplicates_newer_prices(built):
    rows = _rows(built / "aws.csv")
    p3 = _find(rows, instance_type="p3.2xlarge", region="us-east-1")
    # use1-az1 / use1-az3 mapped by the shipped table (moto's default account)
    assert {r["zone"]: r["spot_price"] for r in p3} == {"us-east-1b": "0.5197", "us-east-1e": ""}
    assert all(r["price"] == "3.06" for r in p3)
    # an id missing from the table falls back to azN -> N-th letter
    assert _find(rows, instance_type="m6i.large")[0]["zone"] == "us-east-1i"
    # p4de: one row per zone (the one with a spot price), on-demand from the newer file
    (p4de,) = _find(rows, instance_type="p4de.24xlarge")
    assert p4de["spot_price"] == "7.8074" and p4de["price"] == "27.44705"
    # p5e: spot only
    (p5e,) = _find(rows, instance_type="p5e.48xlarge")
    assert p5e["price"] == "" and p5e["spot_price"] == "14.925"
    # the on-demand file extends coverage: no zone, no spot
    (west,) = _find(rows, instance_type="p3.2xlarge", region="us-west-2")
    assert west["zone"] == "" and west["spot_price"] == "" and west["accelerator_name"] == "V100"
    (g5g,) = _find(rows, instance_type="g5g.xlarge")
    assert (g5g["accelerator_name"], g5g["arch"], g5g["accelerator_memory_gib"]) == ("T4G", "arm64", "16")
    (b200,) = _find(rows, instance_type="p6-b200.48xlarge")
    assert b200["accelerator_name"] == "B200" and float(b200["accelerator_memory_gib"]) == 179
    (g6f,) = _find(rows, instance_type="g6f.large")
    assert g6f["accelerator_count"] == "0.125" and g6f["accelerator_memory_gib"] == "6"


def test_azure_lenient_generation(built):
    rows = _rows(built / "azure.csv")
    assert len(rows) == 5
    (b12,) = _find(rows, instance_type="Standard_B12ms")
    assert (b12["price"], b12["spot_price"], b12["zone"]) == ("0.634", "", "")
    (nc,) = _find(rows, instance_type="Standard_NC6s_v3")
    assert (nc["accelerator_name"], nc["accelerator_memory_gib"]) == ("V100", "16")
    assert _find(rows, instance_type="Standard_D4ps_v5")[0]["arch"] == "arm64"
    assert _find(rows, instance_type="Standard_A1_v2")[0]["arch"] == "x86_64"


def test_read_azure_lenient_counts_repairs(src):
    rows, repaired = build.read_azure_lenient(src / "azure_vms.csv")
    assert repaired == 2 and rows[1]["Generation"] == "V1,V2"


def test_rebuild_is_deterministic(src, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build.main([str(src), "--out", str(a)])
    build.main([str(src), "--out", str(b)])
    for name in ("aws.csv", "gcp.csv", "azure.csv", "SOURCES.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


@pytest.mark.parametrize("itype,cloud,expected", [
    ("t2a-standard-8", "gcp", "arm64"), ("c4a-standard-8", "gcp", "arm64"),
    ("n2-standard-8", "gcp", "x86_64"), ("m6g.large", "aws", "arm64"),
    ("c7gn.xlarge", "aws", "arm64"), ("g4dn.xlarge", "aws", "x86_64"),
    ("gr6.4xlarge", "aws", "x86_64"), ("p6-b200.48xlarge", "aws", "x86_64"),
    ("Standard_E2pds_v5", "azure", "arm64"), ("Standard_NC24ads_A100_v4", "azure", "x86_64"),
])
def test_arch_rules(itype, cloud, expected):
    assert build.arch_of(cloud, itype) == expected


# ---- the shipped catalogs against the real source files -------------------------------

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/catalogs not present")


def _src_rows(name: str) -> list[dict[str, str]]:
    with open(SHARED / name, newline="") as fh:
        return list(csv.DictReader(fh))


@needs_shared
def test_known_prices_in_shipped_catalogs():
    aws = _rows(REPO / "catalogs" / "aws.csv")
    p3 = _find(aws, instance_type="p3.2xlarge", region="us-east-1")
    assert p3 and {r["price"] for r in p3} == {"3.06"}
    assert len({r["zone"] for r in p3}) == len(p3) > 1  # spot stays per zone
    # p5 on-demand after the 2025 cut (the newer on-demand file), not the old $98.32
    assert {r["price"] for r in _find(aws, instance_type="p5.48xlarge", region="us-east-1")} == {"55.04"}
    gcp = _rows(REPO / "catalogs" / "gcp.csv")
    src = _src_rows("gcp_vms.csv")
    zone = "us-central1-a"
    (vm,) = _find(src, InstanceType="a2-highgpu-1g", AvailabilityZone=zone)
    (gpu,) = _find(src, InstanceType="", AcceleratorName="A100", AcceleratorCount="1",
                   AvailabilityZone=zone)
    (offer,) = _find(gcp, instance_type="a2-highgpu-1g", zone=zone)
    assert float(offer["price"]) == pytest.approx(float(vm["Price"]) + float(gpu["Price"]))
    assert float(offer["price"]) == pytest.approx(3.67, abs=0.01)
    azure = _rows(REPO / "catalogs" / "azure.csv")
    (nc,) = _find(azure, instance_type="Standard_NC12s_v3", region="australiaeast")
    assert (nc["price"], nc["spot_price"]) == ("8.468", "1.564886")


@needs_shared
def test_shipped_catalogs_match_a_fresh_build(tmp_path):
    """The committed CSVs are exactly what the script makes from ../shared (not hand-edited)."""
    out = tmp_path / "fresh"
    build.main([str(SHARED), "--out", str(out)])
    for cloud in ("aws", "gcp", "azure"):
        assert (out / f"{cloud}.csv").read_bytes() == (REPO / "catalogs" / f"{cloud}.csv").read_bytes(), cloud
