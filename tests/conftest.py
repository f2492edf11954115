"""Shared fixtures. Every test gets its own broker home: nothing touches ~/.sky."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def sky_home(tmp_path_factory, monkeypatch) -> Path:
    home = tmp_path_factory.mktemp("skyhome")
    monkeypatch.setenv("SKYBROKER_HOME", str(home))
    return home
