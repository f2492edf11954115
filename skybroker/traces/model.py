"""In-memory spot-availability traces: one zone (`Trace`) or several on one time axis.

Convention everywhere in the broker: a sample is the number of spot instances obtainable
during that tick, so **1 (or more) = available**. A gang of N nodes is available when the
count is >= N. Loaders convert other conventions on the way in (see `skybroker.traces.io`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skybroker.errors import TraceError


@dataclass
class Trace:
    """One zone's trace: counts per tick, the tick length, and where it came from."""

    counts: np.ndarray  # int32, shape (ticks,)
    gap_s: float
    name: str = "trace"
    path: Path | None = None
    start_time: float | None = None  # epoch seconds of tick 0, when the source had timestamps
    prices: np.ndarray | None = None  # spot $/h per tick, when the source had them
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, dtype=np.int32)
        if self.counts.ndim != 1:
            raise TraceError(f"{self.name}: a trace is one-dimensional, got shape {self.counts.shape}")
        if not self.gap_s > 0:
            raise TraceError(f"{self.name}: tick length must be > 0 s, got {self.gap_s}")

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    @property
    def max_count(self) -> int:
        return int(self.counts.max()) if len(self) else 0

    def available(self, nodes: int = 1) -> np.ndarray:
        """Bool per tick: can a gang of ``nodes`` spot instances be had?"""
        return self.counts >= max(int(nodes), 1)

    def availability(self, nodes: int = 1) -> float:
        """Share of ticks on which a gang of ``nodes`` is available."""
        return float(self.available(nodes).mean()) if len(self) else 0.0

    def window(self, start_tick: int, length_ticks: int | None = None) -> Trace:
        """Ticks [start, start + length) as a new trace (validated against the trace's end)."""
        n = len(self)
        if start_tick < 0 or start_tick >= n:
            raise TraceError(f"{self.name}: start tick {start_tick} outside the trace (0..{n - 1})")
        end = n if length_ticks is None else start_tick + int(length_ticks)
        if length_ticks is not None and (length_ticks <= 0 or end > n):
            raise TraceError(
                f"{self.name}: window [{start_tick}, {end}) does not fit in the trace's {n} ticks"
            )
        start = None if self.start_time is None else self.start_time + start_tick * self.gap_s
        prices = None if self.prices is None else self.prices[start_tick:end]
        return Trace(self.counts[start_tick:end], self.gap_s, self.name, self.path, start, prices,
                     list(self.warnings))


@dataclass
class ZoneSet:
    """Several zones' traces aligned on one time axis: counts of shape (ticks, zones)."""

    counts: np.ndarray
    gap_s: float
    names: list[str]

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    @property
    def zones(self) -> int:
        return int(self.counts.shape[1])

    def available(self, nodes: int = 1) -> np.ndarray:
        return self.counts >= max(int(nodes), 1)

    def window(self, start_tick: int, length_ticks: int | None = None) -> ZoneSet:
        n = len(self)
        end = n if length_ticks is None else start_tick + int(length_ticks)
        if start_tick < 0 or start_tick >= n or end > n or end <= start_tick:
            raise TraceError(f"zones {', '.join(self.names)}: window [{start_tick}, {end}) "
                             f"does not fit in the aligned {n} ticks")
        return ZoneSet(self.counts[start_tick:end], self.gap_s, list(self.names))


def align(traces: list[Trace]) -> ZoneSet:
    """Put several zones on one time axis.

    Traces with timestamps are aligned on them (the overlap is kept); traces without timestamps
    (the spot-traces JSON) are taken as starting together and cut to the shortest. All must
    share one tick length: resampling would invent availability.
    """
    if not traces:
        raise TraceError("no trace given")
    gaps = {t.gap_s for t in traces}
    if len(gaps) > 1:
        detail = ", ".join(f"{t.name}={t.gap_s:g}s" for t in traces)
        raise TraceError(f"zones must share one tick length to be replayed together: {detail}")
    gap = traces[0].gap_s
    if all(t.start_time is not None for t in traces):
        start = max(t.start_time for t in traces)  # type: ignore[type-var]
        end = min(t.start_time + len(t) * gap for t in traces)  # type: ignore[operator]
        if end <= start:
            raise TraceError("the zones' traces do not overlap in time")
        cols = []
        for t in traces:
            off = (start - t.start_time) / gap  # type: ignore[operator]
            if abs(off - round(off)) > 1e-6:
                raise TraceError(f"{t.name}: samples are not on the same tick grid as the others")
            i = int(round(off))
            cols.append(t.counts[i : i + int(round((end - start) / gap))])
    else:
        m = min(len(t) for t in traces)
        cols = [t.counts[:m] for t in traces]
    return ZoneSet(np.stack(cols, axis=1), gap, [t.name for t in traces])
