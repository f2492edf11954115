"""Spot-availability traces: formats, loading, validation, multi-zone alignment.

Used by `skybroker.replay` and by the local cloud's spot emulation. 1 (or more) = available.
"""

from __future__ import annotations

from skybroker.traces.io import check_convention, load_csv, load_json, load_trace, save_csv
from skybroker.traces.model import Trace, ZoneSet, align

__all__ = ["Trace", "ZoneSet", "align", "check_convention", "load_csv", "load_json", "load_trace",
           "save_csv"]
