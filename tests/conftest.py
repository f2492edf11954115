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


class AdrsBench:
    """The 1,080 ADRS runs as one replay batch, the reference costs, and cached policy runs."""

    def __init__(self) -> None:
        import csv
        import json

        import numpy as np

        from skybroker.replay.engine import make_batch

        with BENCH_TSV.open() as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        traces, wins = {}, []
        for r in rows:
            if r["trace"] not in traces:
                data = json.loads((BENCH_TSV.parent / r["trace"]).read_text())["data"]
                traces[r["trace"]] = np.asarray(data) >= 1
            s = int(r["start_tick"])
            wins.append(traces[r["trace"]][s: s + int(r["length_ticks"])])
        self.col = {k: np.array([float(r[k]) for r in rows]) for k in
                    ("duration_h", "deadline_h", "restart_overhead_h", "cost_uniform_progress",
                     "cost_greedy", "cost_optimum")}
        self.batch = make_batch(wins, self.col["duration_h"] * 3600, self.col["deadline_h"] * 3600,
                                self.col["restart_overhead_h"] * 3600, np.full(len(rows), 600.0))
        self._runs: dict[str, object] = {}

    def run(self, policy: str):
        """The replay of `policy` over the whole set (computed once per test process)."""
        from skybroker.policy import canonical_name, get_policy
        from skybroker.replay.engine import simulate

        key = canonical_name(policy)
        if key not in self._runs:
            self._runs[key] = simulate(self.batch, get_policy(key))
        return self._runs[key]


@pytest.fixture(scope="session")
def adrs_bench() -> AdrsBench:
    return AdrsBench()
