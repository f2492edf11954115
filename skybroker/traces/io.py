"""Load and validate spot-availability traces: spot-traces JSON and plain CSV.

Bad input fails loudly with a `TraceError` naming the file and line, because a silently
misread trace (inverted convention, missing samples) produces plausible but wrong costs.

CSV: a header then one sample per line, ``timestamp,available`` (epoch seconds or ISO 8601,
the tick length is inferred and every step must equal it) or ``tick,available`` (consecutive
integers; the tick length comes from a ``# gap_seconds: 600`` comment or ``gap_s=``). The value
column may be named ``available`` / ``count`` (1 or more = available) or ``preempted`` /
``unavailable`` (the inverted "1 = preempted" convention of the paper's simulator: converted).
"""

from __future__ import annotations

import csv
import json
import math
import re
from datetime import datetime
from pathlib import Path

import numpy as np

from skybroker.errors import TraceError
from skybroker.traces.model import Trace

_AVAILABLE_COLS = ("available", "availability", "count", "spot_available", "capacity")
_INVERTED_COLS = ("preempted", "unavailable", "preemption")
_GAP_COMMENT = re.compile(r"#\s*gap(?:_seconds)?\s*[:=]\s*([0-9.]+)", re.I)


def load_trace(path: str | Path, gap_s: float | None = None, inverted: bool = False) -> Trace:
    """Load a trace file by extension (.json spot-traces format, .csv/.tsv/.txt)."""
    p = Path(path)
    if not p.exists():
        raise TraceError(f"{p}: no such trace file")
    suffix = p.suffix.lower()
    if suffix == ".json":
        trace = load_json(p)
    elif suffix in (".csv", ".tsv", ".txt"):
        trace = load_csv(p, gap_s=gap_s)
    else:
        raise TraceError(f"{p}: unknown trace format {suffix!r} (expected .json or .csv)")
    if inverted:
        trace.counts = (trace.counts == 0).astype(np.int32)
        trace.warnings = []
    check_convention(trace)
    return trace


def load_json(path: Path) -> Trace:
    """The spot-traces JSON: ``{"metadata": {"gap_seconds": g}, "data": [...], "prices"?}``."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise TraceError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or "data" not in doc:
        raise TraceError(f"{path}: expected an object with 'metadata' and 'data' (spot-traces format)")
    meta = doc.get("metadata") or {}
    gap = meta.get("gap_seconds")
    if not isinstance(gap, (int, float)) or isinstance(gap, bool) or not gap > 0:
        raise TraceError(f"{path}: metadata.gap_seconds must be a positive number, got {gap!r}")
    data = doc["data"]
    if not isinstance(data, list) or not data:
        raise TraceError(f"{path}: 'data' must be a non-empty list of counts")
    for i, v in enumerate(data):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v):
            raise TraceError(f"{path}: data[{i}] = {v!r} is not a non-negative integer count")
    prices = doc.get("prices")
    parr = None
    if prices is not None:
        try:
            parr = np.asarray(prices, dtype=float)
        except (TypeError, ValueError):
            raise TraceError(f"{path}: 'prices' must be numbers") from None
    return Trace(np.asarray(data, dtype=np.int32), float(gap), path.stem, path, None, parr)


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    t = text.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(t)
    return dt.timestamp()


def load_csv(path: Path, gap_s: float | None = None) -> Trace:
    """A CSV of ``timestamp|tick, available|count|preempted`` rows (see the module docstring)."""
    try:
        text = path.read_text()
    except OSError as e:
        raise TraceError(f"{path}: cannot read ({e})") from None
    lines = text.splitlines()
    rows: list[tuple[int, list[str]]] = []
    for lineno, line in enumerate(lines, 1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            m = _GAP_COMMENT.match(s)
            if m and gap_s is None:
                gap_s = float(m.group(1))
            continue
        delim = "\t" if "\t" in s else ","
        rows.append((lineno, [c.strip() for c in next(csv.reader([s], delimiter=delim))]))
    if len(rows) < 2:
        raise TraceError(f"{path}: expected a header and at least one sample")
    hline, header = rows[0]
    cols = [h.lower() for h in header]
    if len(cols) < 2:
        raise TraceError(f"{path}:{hline}: header needs two columns, e.g. 'timestamp,available'")
    tcol, vcol = cols[0], cols[1]
    if tcol not in ("timestamp", "time", "tick"):
        raise TraceError(f"{path}:{hline}: first column must be 'timestamp' or 'tick', got {header[0]!r}")
    inverted = vcol in _INVERTED_COLS
    if vcol not in _AVAILABLE_COLS and not inverted:
        raise TraceError(
            f"{path}:{hline}: second column must be one of {', '.join(_AVAILABLE_COLS)} "
            f"(1 = available) or {', '.join(_INVERTED_COLS)} (1 = preempted), got {header[1]!r}"
        )
    times: list[float] = []
    values: list[int] = []
    for lineno, r in rows[1:]:
        if len(r) < 2:
            raise TraceError(f"{path}:{lineno}: expected 2 columns, got {len(r)}")
        try:
            t = _parse_time(r[0]) if tcol != "tick" else float(r[0])
        except ValueError:
            raise TraceError(f"{path}:{lineno}: {tcol} {r[0]!r} is not a number or ISO 8601 time") from None
        try:
            v = float(r[1])
        except ValueError:
            raise TraceError(f"{path}:{lineno}: value {r[1]!r} is not numeric") from None
        if not math.isfinite(v) or v < 0 or v != int(v):
            raise TraceError(f"{path}:{lineno}: value {r[1]!r} must be 0/1 or a non-negative count")
        if not math.isfinite(t):
            raise TraceError(f"{path}:{lineno}: {tcol} {r[0]!r} is not finite")
        times.append(t)
        values.append(int(v))
    if inverted and max(values) > 1:
        raise TraceError(f"{path}: a '{vcol}' column must hold 0/1, found {max(values)}")
    counts = np.asarray(values, dtype=np.int32)
    if inverted:
        counts = (counts == 0).astype(np.int32)
    tarr = np.asarray(times)
    linenos = [ln for ln, _ in rows[1:]]
    start_time: float | None = None
    if tcol == "tick":
        steps = np.diff(tarr)
        bad = np.nonzero(steps != 1)[0]
        if bad.size:
            i = int(bad[0])
            raise TraceError(f"{path}:{linenos[i + 1]}: tick {tarr[i + 1]:g} follows {tarr[i]:g}; "
                             "ticks must be consecutive (missing or repeated samples?)")
        if gap_s is None:
            raise TraceError(f"{path}: a 'tick' CSV needs the tick length: add a '# gap_seconds: 600' "
                             "line or pass it (sky replay --trace-gap)")
    else:
        steps = np.diff(tarr)
        if steps.size == 0:
            if gap_s is None:
                raise TraceError(f"{path}: one sample cannot tell the tick length; pass it")
        else:
            gap = _typical_step(steps) if gap_s is None else float(gap_s)
            if gap <= 0:
                raise TraceError(f"{path}: timestamps must increase")
            bad = np.nonzero(np.abs(steps - gap) > max(1e-6 * gap, 1e-6))[0]
            if bad.size:
                i = int(bad[0])
                what = "repeated or decreasing" if steps[i] <= 0 else (
                    "a gap (missing samples)" if steps[i] > gap else "an irregular step")
                raise TraceError(f"{path}:{linenos[i + 1]}: step of {steps[i]:g} s after the previous "
                                 f"sample where the trace's tick is {gap:g} s: {what}")
            gap_s = gap
        start_time = float(tarr[0])
    return Trace(counts, float(gap_s), path.stem, path, start_time)  # type: ignore[arg-type]


def _typical_step(steps: np.ndarray) -> float:
    """The tick: the most frequent positive step (ties: the smallest), so one gap is the outlier."""
    pos = steps[steps > 0]
    if pos.size == 0:
        return 0.0
    values, counts = np.unique(np.round(pos, 6), return_counts=True)
    return float(values[np.flatnonzero(counts == counts.max())[0]])


def check_convention(trace: Trace) -> list[str]:
    """Heuristic warnings for a trace that may use the inverted "1 = preempted" convention.

    Real availability traces have long stretches of availability. Two signs of inversion:
    almost nothing available (< 5% of ticks), or the available ticks coming as isolated blips
    (mean run under 1.5 ticks) while unavailable stretches are long: that is what preemption
    *events* look like when read as availability.
    """
    a = trace.counts > 0
    out: list[str] = []
    if len(a) >= 20:
        share = float(a.mean())
        edges = np.flatnonzero(np.diff(a.astype(np.int8))) + 1
        runs = np.split(a, edges)
        on = [len(r) for r in runs if r[0]]
        off = [len(r) for r in runs if not r[0]]
        blips = len(on) >= 5 and np.mean(on) < 1.5 and off and np.mean(off) > 5 * np.mean(on)
        if share < 0.05 or blips:
            out.append(
                f"{trace.name}: spot looks available on only {share:.1%} of ticks"
                + (" in isolated blips" if blips else "")
                + "; if this file marks preemptions with 1, load it with inverted=True "
                "(sky replay --inverted-trace) or name the column 'preempted'"
            )
    trace.warnings.extend(w for w in out if w not in trace.warnings)
    return out


def save_csv(trace: Trace, path: str | Path) -> None:
    """Write a trace as ``tick,available`` with its tick length in a comment."""
    p = Path(path)
    lines = [f"# gap_seconds: {trace.gap_s:g}", "tick,available"]
    lines += [f"{i},{int(v)}" for i, v in enumerate(trace.counts)]
    p.write_text("\n".join(lines) + "\n")
