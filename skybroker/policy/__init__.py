"""Deadline policies: pure, vectorised numpy shared by `replay/` and the managed-job controller.

This package imports nothing of the broker. See :mod:`skybroker.policy.base` for the contract
(state arrays in, proposals out, `finalize` applies the simulator's guarantee) and
:mod:`skybroker.policy.registry` for names (`get_policy("up")`).
"""

from __future__ import annotations

from skybroker.policy.base import (
    EPS,
    NONE,
    OD,
    SPOT,
    TYPE_NAMES,
    BasePolicy,
    DeadlineTerms,
    Decision,
    Policy,
    RunState,
    deadline_terms,
    finalize,
    memory_from_json,
)
from skybroker.policy.registry import (
    UnknownPolicyError,
    canonical_name,
    describe_policies,
    get_policy,
    policy_aliases,
    policy_names,
    register_policy,
)

__all__ = [
    "EPS", "NONE", "OD", "SPOT", "TYPE_NAMES", "BasePolicy", "Decision", "DeadlineTerms",
    "Policy", "RunState", "deadline_terms", "finalize", "memory_from_json",
    "UnknownPolicyError", "canonical_name", "describe_policies", "get_policy",
    "policy_aliases", "policy_names", "register_policy",
]
