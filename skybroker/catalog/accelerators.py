"""Accelerator names: the canonical spelling, aliases, and per-device memory.

Catalog rows always carry the canonical name (`A100-80GB`, `H100`, `T4`), so a query
canonicalizes the user's spelling once and then compares strings exactly over numpy arrays.
This module imports nothing heavy: `task/` may use it to validate YAML without numpy.
"""

from __future__ import annotations

import re

# Canonical name -> memory of one device in GiB (public specs), used when a source does not
# say (Azure, the AWS on-demand file). Sources that do say (AWS GpuInfo, GCP GpuInfo) win.
ACCELERATOR_MEMORY_GIB: dict[str, float] = {
    "A10": 24, "A10G": 24, "A100": 40, "A100-80GB": 80, "B200": 180, "B300": 268,
    "H100": 80, "H100-MEGA": 80, "H200": 141, "K520": 4, "K80": 12, "L4": 24, "L40": 48,
    "L40S": 48, "M60": 8, "MI25": 16, "MI300X": 192, "P100": 16, "P4": 8, "P40": 24,
    "RTXPRO6000": 96, "T4": 16, "T4G": 16, "V100": 16, "V100-32GB": 32, "V520": 8,
    "Inferentia": 8, "Inferentia2": 32, "Trainium": 32, "Trainium2": 96, "QualcommAI100": 16,
}

# Names a user may plausibly type -> canonical name (keys lower-case, no spaces).
_ALIASES: dict[str, str] = {
    "a100-40gb": "A100", "a100-40g": "A100", "a100-80g": "A100-80GB", "a100_80gb": "A100-80GB",
    "h100-80gb": "H100", "h100-mega-80gb": "H100-MEGA", "h100mega": "H100-MEGA",
    "v100-16gb": "V100", "v100-32g": "V100-32GB", "rtx-pro-6000": "RTXPRO6000",
    "rtxpro-6000": "RTXPRO6000", "t4g": "T4G", "inf1": "Inferentia", "inf2": "Inferentia2",
    "trn1": "Trainium", "trn2": "Trainium2", "radeon-pro-v520": "V520", "grid-k520": "K520",
    "qualcomm-ai100": "QualcommAI100", "ai100": "QualcommAI100",
}

KNOWN_ACCELERATORS: tuple[str, ...] = tuple(sorted(ACCELERATOR_MEMORY_GIB))
_BY_LOWER: dict[str, str] = {n.lower(): n for n in KNOWN_ACCELERATORS}

# Vendor strings found in price sources (e.g. "NVIDIA A10G", "AWS Inferentia2").
_VENDOR_PREFIX = re.compile(r"^(nvidia|amd|aws|arm|qualcomm)\s+", re.IGNORECASE)


def canonical_accelerator(name: str, extra: tuple[str, ...] | list[str] = ()) -> str | None:
    """The canonical spelling of `name` (case-insensitive), or None when unknown.

    `extra` holds names seen in a loaded catalog that this module does not list (a refreshed
    catalog may bring new GPUs); they match case-insensitively too.
    """
    key = name.strip().lower().replace(" ", "")
    if key in _BY_LOWER:
        return _BY_LOWER[key]
    if key in _ALIASES:
        return _ALIASES[key]
    for e in extra:
        if e.lower().replace(" ", "") == key:
            return e
    return None


def normalize_vendor_name(raw: str) -> str:
    """Turn a price-source GPU name ("NVIDIA B200 Blackwell") into our token form ("B200")."""
    name = _VENDOR_PREFIX.sub("", raw.strip())
    name = re.sub(r"\s+Blackwell$", "", name)
    name = {"GRID K520": "K520", "Radeon Pro V520": "V520", "AI 100": "QualcommAI100",
            "RTX PRO 6000": "RTXPRO6000"}.get(name, name)
    return canonical_accelerator(name) or name.replace(" ", "")


def accelerator_suggestions(name: str, extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Up to three known names close to `name`, for "did you mean"."""
    from skybroker.utils.registry import suggest

    choices = sorted(set(KNOWN_ACCELERATORS) | set(extra))
    hits = suggest(name, choices, n=3, cutoff=0.5)
    if not hits:  # "a100-8" -> every name sharing the prefix
        hits = [c for c in choices if c.lower().startswith(name.lower()[:3])][:3]
    return hits


def parse_accelerator_spec(spec: str) -> tuple[str, float | None]:
    """Split "A100:8" into ("A100", 8.0); "A100" into ("A100", None). Name is not canonicalized."""
    name, sep, count = spec.partition(":")
    if not sep or not count.strip():
        return name.strip(), None
    try:
        value = float(count)
    except ValueError:
        from skybroker.errors import SkyError

        raise SkyError(f"Bad accelerator count in {spec!r}: expected NAME or NAME:COUNT") from None
    if value <= 0:
        from skybroker.errors import SkyError

        raise SkyError(f"Bad accelerator count in {spec!r}: must be positive")
    return name.strip(), value
