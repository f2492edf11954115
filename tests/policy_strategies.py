"""Hypothesis strategies shared by the deadline-policy tests."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from skybroker.replay.engine import make_batch


@st.composite
def feasible_runs(draw):
    """Bursty random traces with feasible deadlines (on-demand from the start fits)."""
    n = draw(st.integers(1, 10))
    g = float(draw(st.sampled_from([32.0, 300.0, 600.0])))
    avail, work, deadline, d = [], [], [], []
    for _ in range(n):
        ticks = draw(st.integers(3, 90))
        bits: list[bool] = []
        on = draw(st.booleans())
        while len(bits) < ticks:
            bits += [on] * draw(st.integers(1, 15))
            on = not on
        oh = draw(st.sampled_from([0.0, 0.12, 0.5, 1.0, 1.2, 2.4, 4.0])) * g
        c = draw(st.floats(0.3, 50.0)) * g
        lo = math.ceil((c + oh) / g) * g  # the tightest feasible deadline
        avail.append(np.array(bits[:ticks]))
        work.append(c)
        deadline.append(lo + draw(st.floats(0.0, 2.0)) * c)
        d.append(oh)
    return make_batch(avail, np.array(work), np.array(deadline), np.array(d), np.full(n, g))
