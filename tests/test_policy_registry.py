"""Policy names, aliases and did-you-mean; policy/ stays free of broker imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from skybroker.policy import (
    UnknownPolicyError,
    canonical_name,
    describe_policies,
    get_policy,
    policy_names,
)


def test_baseline_names_and_aliases():
    names = policy_names()
    for n in ("on_demand", "spot_only", "greedy", "uniform_progress", "time_sliced"):
        assert n in names
    assert "optimum" not in names  # omniscient: not a policy
    assert canonical_name("up") == "uniform_progress"
    assert canonical_name("UP") == "uniform_progress"
    assert get_policy("up").name == "uniform_progress"
    assert all(describe_policies().values())


def test_unknown_policy_suggests_the_closest():
    with pytest.raises(UnknownPolicyError, match="Did you mean 'greedy'"):
        get_policy("gredy")
    with pytest.raises(UnknownPolicyError, match="Known: "):
        get_policy("zzz")


def test_policy_package_imports_nothing_of_the_broker():
    code = ("import sys, skybroker.policy as p; p.policy_names(); "
            "bad = [m for m in sys.modules if m.startswith('skybroker.') "
            "and not m.startswith('skybroker.policy')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_time_sliced_takes_parameters():
    assert get_policy("time_sliced", slices=3).slices == 3
    with pytest.raises(ValueError):
        get_policy("time_sliced", slices=0)
