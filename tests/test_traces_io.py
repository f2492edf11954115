"""Trace loading and validation: formats, conventions, clear errors with file and line."""

from __future__ import annotations

import filecmp
import json

import numpy as np
import pytest
from conftest import REPO, SHARED

from skybroker.errors import TraceError
from skybroker.traces import Trace, align, load_trace, save_csv

SHIPPED = REPO / "traces" / "spot-traces"


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_shipped_traces_are_the_published_files():
    files = sorted(p.relative_to(SHIPPED) for p in SHIPPED.rglob("*.json"))
    assert len(files) == 18
    src = SHARED / "traces" / "spot-traces"
    if src.exists():
        for f in files:
            assert filecmp.cmp(SHIPPED / f, src / f, shallow=False), f


def test_every_shipped_trace_loads_without_warnings():
    for p in SHIPPED.rglob("*.json"):
        t = load_trace(p)
        assert len(t) > 1000 and t.gap_s in (32, 300, 600)
        assert t.warnings == [], p


def test_json_counts_and_gangs(tmp_path):
    p = _write(tmp_path, "z.json", json.dumps({"metadata": {"gap_seconds": 300}, "data": [0, 2, 4, 1]}))
    t = load_trace(p)
    assert t.gap_s == 300 and t.available(1).tolist() == [False, True, True, True]
    assert t.available(4).tolist() == [False, False, True, False]


@pytest.mark.parametrize("doc, msg", [
    ({"metadata": {}, "data": [1]}, "gap_seconds"),
    ({"metadata": {"gap_seconds": 600}, "data": [1, "x"]}, r"data\[1\]"),
    ({"metadata": {"gap_seconds": 600}, "data": [1, -1]}, r"data\[1\]"),
    ({"metadata": {"gap_seconds": 600}, "data": [1, 0.5]}, r"data\[1\]"),
    ({"metadata": {"gap_seconds": 600}, "data": []}, "non-empty"),
    ([1, 0], "metadata"),
])
def test_bad_json_is_rejected(tmp_path, doc, msg):
    p = _write(tmp_path, "bad.json", json.dumps(doc))
    with pytest.raises(TraceError, match=msg):
        load_trace(p)


def test_csv_with_timestamps_infers_the_tick(tmp_path):
    p = _write(tmp_path, "t.csv", "timestamp,available\n1000,1\n1600,0\n2200,1\n")
    t = load_trace(p)
    assert t.gap_s == 600 and t.counts.tolist() == [1, 0, 1] and t.start_time == 1000


def test_csv_with_iso_timestamps(tmp_path):
    p = _write(tmp_path, "t.csv",
               "timestamp,available\n2023-01-01T00:00:00Z,1\n2023-01-01T00:10:00Z,1\n2023-01-01T00:20:00Z,0\n")
    assert load_trace(p).gap_s == 600


def test_csv_with_ticks_needs_and_reads_the_gap(tmp_path):
    p = _write(tmp_path, "t.csv", "tick,available\n0,1\n1,0\n")
    with pytest.raises(TraceError, match="gap_seconds"):
        load_trace(p)
    assert load_trace(p, gap_s=60).gap_s == 60
    q = _write(tmp_path, "u.csv", "# gap_seconds: 300\ntick,available\n0,1\n1,0\n")
    assert load_trace(q).gap_s == 300


@pytest.mark.parametrize("body, line, msg", [
    ("timestamp,available\n0,1\n600,1\n1800,0\n", 4, "gap"),
    ("timestamp,available\n0,1\n600,1\n900,0\n1500,1\n", 4, "irregular"),
    ("timestamp,available\n0,1\n600,yes\n", 3, "not numeric"),
    ("timestamp,available\n0,1\n600,0.5\n", 3, "0/1"),
    ("timestamp,available\n0,1\n0,1\n600,1\n", 3, "repeated"),
    ("tick,available\n0,1\n2,1\n", 3, "consecutive"),
    ("time,foo\n0,1\n", 1, "second column"),
    ("when,available\n0,1\n", 1, "first column"),
])
def test_csv_errors_name_file_and_line(tmp_path, body, line, msg):
    p = _write(tmp_path, "bad.csv", body)
    with pytest.raises(TraceError, match=msg) as e:
        load_trace(p, gap_s=600 if body.startswith("tick") else None)
    assert f"bad.csv:{line}" in str(e.value)


def test_preempted_column_is_converted(tmp_path):
    p = _write(tmp_path, "p.csv", "timestamp,preempted\n0,1\n60,0\n120,0\n")
    assert load_trace(p).counts.tolist() == [0, 1, 1]


def test_inverted_convention_is_flagged_and_can_be_flipped(tmp_path):
    data = ([0] * 30 + [1]) * 10  # isolated 1s: preemption events read as availability
    p = _write(tmp_path, "inv.json", json.dumps({"metadata": {"gap_seconds": 60}, "data": data}))
    t = load_trace(p)
    assert t.warnings and "inverted" in t.warnings[0]
    flipped = load_trace(p, inverted=True)
    assert flipped.warnings == [] and flipped.availability() > 0.9


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(TraceError, match="no such"):
        load_trace(tmp_path / "nope.json")
    with pytest.raises(TraceError, match="unknown trace format"):
        load_trace(_write(tmp_path, "x.parquet", ""))


def test_csv_round_trip(tmp_path):
    t = Trace(np.array([1, 0, 3]), 300.0, "x")
    save_csv(t, tmp_path / "x.csv")
    back = load_trace(tmp_path / "x.csv")
    assert back.counts.tolist() == [1, 0, 3] and back.gap_s == 300


def test_windows_are_checked():
    t = Trace(np.ones(10), 60.0, "x")
    assert len(t.window(2, 5)) == 5
    with pytest.raises(TraceError, match="does not fit"):
        t.window(8, 5)
    with pytest.raises(TraceError, match="outside"):
        t.window(10)


def test_align_zones_on_timestamps_and_ticks():
    a = Trace(np.array([1, 1, 0, 0]), 60.0, "a", start_time=0.0)
    b = Trace(np.array([0, 1, 1]), 60.0, "b", start_time=60.0)
    z = align([a, b])
    assert z.counts.tolist() == [[1, 0], [0, 1], [0, 1]]
    z2 = align([Trace(np.ones(5), 60.0, "a"), Trace(np.zeros(3), 60.0, "b")])
    assert z2.counts.shape == (3, 2)
    with pytest.raises(TraceError, match="tick length"):
        align([Trace(np.ones(5), 60.0, "a"), Trace(np.ones(5), 30.0, "b")])
    with pytest.raises(TraceError, match="overlap"):
        align([a, Trace(np.ones(2), 60.0, "c", start_time=1e6)])
