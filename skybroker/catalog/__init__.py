"""Per-cloud offer tables: load (cached, vectorised numpy), query, name accelerators.

`from skybroker.catalog import load_catalogs, canonical_accelerator` is cheap for the names
helpers (no numpy); the table API imports numpy on first attribute access.
"""

from __future__ import annotations

from skybroker.catalog.accelerators import (
    ACCELERATOR_MEMORY_GIB,
    KNOWN_ACCELERATORS,
    accelerator_suggestions,
    canonical_accelerator,
    parse_accelerator_spec,
)

_LAZY = {
    "Offer": "skybroker.catalog.table",
    "OfferTable": "skybroker.catalog.table",
    "COLUMNS": "skybroker.catalog.table",
    "CSV_COLUMNS": "skybroker.catalog.table",
    "load_catalog": "skybroker.catalog.store",
    "load_catalogs": "skybroker.catalog.store",
    "catalog_info": "skybroker.catalog.store",
    "catalog_path": "skybroker.catalog.store",
    "available_clouds": "skybroker.catalog.store",
    "aws_zone_ids": "skybroker.catalog.store",
    "CatalogInfo": "skybroker.catalog.store",
}

__all__ = [
    "ACCELERATOR_MEMORY_GIB", "KNOWN_ACCELERATORS", "accelerator_suggestions",
    "canonical_accelerator", "parse_accelerator_spec", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skybroker.catalog' has no attribute {name!r}")
