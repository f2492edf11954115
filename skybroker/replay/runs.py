"""Run specifications: which trace window, job, deadline and overhead each replay run uses.

A runs file is a TSV (or CSV) with a header holding at least ``trace``, ``start_tick``,
``length_ticks``, ``duration_h``, ``deadline_h``, ``restart_overhead_h`` (the columns of the
public ADRS evaluation set); ``nodes`` is optional and extra columns are ignored. ``trace`` is
a path relative to the runs file; several zones of one run are joined with ``+``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from skybroker.errors import TraceError
from skybroker.traces import Trace, ZoneSet, align, load_trace

REQUIRED = ("trace", "start_tick", "length_ticks", "duration_h", "deadline_h", "restart_overhead_h")


@dataclass(frozen=True)
class RunSpec:
    """One replay run. ``traces`` are resolved paths (several = multi-zone)."""

    traces: tuple[str, ...]
    duration_h: float
    deadline_h: float
    restart_overhead_h: float
    start_tick: int = 0
    length_ticks: int | None = None
    nodes: int = 1
    label: str = ""  # the trace column as the user wrote it, for records

    def __post_init__(self) -> None:
        if not self.traces:
            raise ValueError("a run needs at least one trace")
        for name in ("duration_h", "deadline_h", "restart_overhead_h"):
            v = getattr(self, name)
            if not v >= 0:
                raise ValueError(f"{name} must be >= 0, got {v}")
        if self.duration_h <= 0:
            raise ValueError("duration_h must be > 0")
        if self.nodes < 1:
            raise ValueError(f"nodes must be >= 1, got {self.nodes}")


class TraceCache:
    """Loads each trace file once per batch (1,080 runs share 4 files)."""

    def __init__(self, gap_s: float | None = None, inverted: bool = False) -> None:
        self._cache: dict[str, Trace] = {}
        self.gap_s = gap_s
        self.inverted = inverted

    def get(self, path: str) -> Trace:
        if path not in self._cache:
            self._cache[path] = load_trace(path, gap_s=self.gap_s, inverted=self.inverted)
        return self._cache[path]

    def window(self, spec: RunSpec) -> Trace | ZoneSet:
        """The run's availability window: one zone's Trace, or a ZoneSet for several."""
        traces = [self.get(p) for p in spec.traces]
        if len(traces) == 1:
            return traces[0].window(spec.start_tick, spec.length_ticks)
        return align(traces).window(spec.start_tick, spec.length_ticks)

    def warnings(self) -> list[str]:
        return [w for t in self._cache.values() for w in t.warnings]


def _num(row: dict, key: str, path: Path, lineno: int, kind=float):
    try:
        v = kind(float(row[key])) if kind is int else float(row[key])
    except (TypeError, ValueError):
        raise TraceError(f"{path}:{lineno}: column {key!r} = {row.get(key)!r} is not a number") from None
    if kind is int and float(row[key]) != v:
        raise TraceError(f"{path}:{lineno}: column {key!r} must be an integer, got {row[key]!r}")
    return v


def load_runs(path: str | Path, nodes: int | None = None) -> list[RunSpec]:
    """Read a runs file; trace paths are resolved against the runs file's folder."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise TraceError(f"{p}: cannot read runs file ({e})") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise TraceError(f"{p}: empty runs file")
    delim = "\t" if "\t" in lines[0] else ","
    reader = csv.DictReader(lines, delimiter=delim)
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise TraceError(f"{p}: runs file lacks column(s) {', '.join(missing)} "
                         f"(needs {', '.join(REQUIRED)}; extra columns are ignored)")
    specs = []
    for i, row in enumerate(reader, 2):
        label = row["trace"].strip()
        paths = tuple(str((p.parent / part.strip()).resolve()) for part in label.split("+"))
        n = nodes if nodes is not None else (
            _num(row, "nodes", p, i, int) if row.get("nodes") not in (None, "") else 1)
        try:
            specs.append(RunSpec(
                traces=paths,
                duration_h=_num(row, "duration_h", p, i),
                deadline_h=_num(row, "deadline_h", p, i),
                restart_overhead_h=_num(row, "restart_overhead_h", p, i),
                start_tick=_num(row, "start_tick", p, i, int),
                length_ticks=_num(row, "length_ticks", p, i, int),
                nodes=n,
                label=label,
            ))
        except ValueError as e:
            raise TraceError(f"{p}:{i}: {e}") from None
    if not specs:
        raise TraceError(f"{p}: no runs in file")
    return specs
