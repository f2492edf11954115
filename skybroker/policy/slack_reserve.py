"""Slack Reserve: our deadline policy (``--policy best``), a budget view of the deadline.

Why: the slack S = R - (C + d) (tick-rounded like the simulator) is a budget that only goes
down: an idle tick spends g of it, a restart spends d, a working tick spends nothing. Greedy
spends it all on the first outages and then runs on-demand to the end, even while spot is
back; Uniform Progress spends it evenly but buys on-demand whenever it falls behind a line that
ignores how much slack is left (too early at loose deadlines). Slack Reserve:

* waits out an outage while the slack is above a *reserve*: a few restarts' worth
  (``reserve_d * d + reserve_g * g``) plus a share of the initial slack that shrinks with the
  time left (``share * S0 * R / R0``), so slack is spent no faster than UP would at
  ``share = 1`` and as freely as Greedy at ``share = 0``;
* below the reserve, covers outages with on-demand, except that a *young* outage is still
  waited out while the slack affords it (ski rental: an on-demand detour costs two restarts,
  ``2d``, so an outage shorter than that is cheaper to wait out);
* leaves on-demand for spot as soon as the slack is above the reserve, or, below it, when the
  spot run has lasted long enough to pay for the detour: on spot-availability traces a run's
  expected remainder grows with its age (runs are heavy-tailed), and switching pays when the
  run outlasts ``2d * k / (k - 1)`` (k = on-demand / spot price: two restarts billed against
  the per-second saving of spot);
* keeps Greedy's safety net (on-demand for good once two restarts no longer fit) and only ever
  starts spot while two restarts still fit, so it meets every deadline Greedy meets.

Parameters are in units of d and g and shares of the slack, not of any trace; the defaults
were chosen on the k80 traces of the ADRS set and tested on the v100 ones (docs/policies.md).
Per-run memory is the age of the current availability state (ticks), learned online.
"""

from __future__ import annotations

import numpy as np

from skybroker.policy.base import (
    NONE,
    OD,
    SPOT,
    TYPE_DTYPE,
    BasePolicy,
    RunState,
    advance_state_age,
    state_age_memory,
)
from skybroker.policy.registry import register_policy

#: The paper's prices: on-demand $3.06/h over spot $0.9731/h.
PAPER_PRICE_RATIO = 3.06 / 0.9731


class SlackReserve(BasePolicy):
    """Wait while the slack is above a reserve; below it, on-demand in outages, spot back when
    the spot run pays for the detour."""

    name = "slack_reserve"

    def __init__(
        self,
        reserve_d: float = 4.0,
        reserve_g: float = 2.0,
        share: float = 0.5,
        floor_d: float = 1.0,
        floor_g: float = 1.0,
        payback: float = 1.0,
        ski: float = 1.0,
        price_ratio: float = PAPER_PRICE_RATIO,
    ) -> None:
        if price_ratio <= 1.0:
            raise ValueError("slack_reserve: price_ratio (on-demand / spot) must be > 1")
        if min(reserve_d, reserve_g, share, floor_d, floor_g, payback, ski) < 0:
            raise ValueError("slack_reserve: parameters must be >= 0")
        self.reserve_d, self.reserve_g, self.share = reserve_d, reserve_g, share
        self.floor_d, self.floor_g = floor_d, floor_g
        self.payback, self.ski, self.k = payback, ski, price_ratio

    def init_memory(self, n: int) -> dict[str, np.ndarray]:
        return state_age_memory(n)

    def decide(self, state: RunState, memory: dict[str, np.ndarray]) -> np.ndarray:
        av = state.spot_any
        age = advance_state_age(state, memory)

        g, d = state.gap, state.overhead
        c = state.work_total - state.work_done
        r = state.deadline - state.elapsed
        left = np.floor(r / g) * g
        need1 = np.ceil((c + d) / g) * g
        need2 = np.ceil((c + 2.0 * d) / g) * g
        slack = left - need1  # what can still be lost, after one restart
        spot_ok = need2 < left  # a spot start still leaves room for one more restart

        s0 = np.maximum(state.deadline - state.work_total, 0.0)
        frac = np.clip(r / np.maximum(state.deadline, 1e-9), 0.0, 1.0)
        reserve = self.reserve_d * d + self.reserve_g * g + self.share * s0 * frac
        above = slack > reserve
        afford = slack > self.floor_d * d + self.floor_g * g
        run_s = age * g  # how long the current availability state has lasted
        pays = run_s >= self.payback * 2.0 * d * self.k / (self.k - 1.0)
        young_outage = run_s < self.ski * 2.0 * d

        cur = state.cur
        x = np.full(state.n, NONE, dtype=TYPE_DTYPE)
        # Spot available: keep it; take it from idle while it is safe; leave on-demand for it
        # when there is slack to spare or the run has proven long enough to pay.
        x[av & (cur == SPOT)] = SPOT
        idle = cur == NONE
        x[av & idle] = np.where(spot_ok, SPOT, OD)[av & idle]
        on_od = cur == OD
        back = spot_ok & (above | (afford & pays))
        x[av & on_od] = np.where(back, SPOT, OD)[av & on_od]
        # No spot: wait above the reserve (or through a young outage we can afford); else OD.
        wait = above | (afford & young_outage)
        x[~av & idle] = np.where(wait, NONE, OD)[~av & idle]
        x[~av & on_od] = OD
        # Greedy's safety net: once two restarts no longer fit, an idle or on-demand run goes
        # (or stays) on-demand; `finalize` adds the simulator's last-resort guarantee.
        x[(need2 >= left) & (idle | on_od)] = OD
        return x


register_policy(
    "slack_reserve",
    SlackReserve,
    aliases=("slack-reserve", "reserve"),
    description="Slack Reserve (ours): wait above a slack reserve, on-demand below it, "
    "back to spot when the run pays for the detour",
)
