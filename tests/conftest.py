"""Shared fixtures. Every test gets its own broker home: nothing touches ~/.sky."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
# The paper simulator's costs for the 1,080 ADRS runs (a copy of ../shared/bench with trace
# paths pointing at the project's own traces/), so the oracle tests never depend on ../shared.
BENCH_TSV = REPO / "tests" / "fixtures" / "bench" / "adrs_single_region_eval.tsv"


@pytest.fixture(autouse=True)
def sky_home(tmp_path_factory, monkeypatch) -> Path:
    home = tmp_path_factory.mktemp("skyhome")
    monkeypatch.setenv("SKYBROKER_HOME", str(home))
    return home
