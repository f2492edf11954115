"""Pipelines: choose one placement per task over a DAG, counting egress between tasks.

Each task's candidate *states* are the (cloud, region) pairs of its plan, valued at the
cheapest placement there times the task's estimated hours; an edge costs the parent's output
size times the egress price between the two states. Chains and trees are solved exactly by
dynamic programming (min-sum message passing over the tree); other DAGs, where a task has
several parents that share ancestors, are solved exactly as a small ILP with pulp.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skybroker.errors import SkyError
from skybroker.optimizer.optimizer import optimize
from skybroker.optimizer.plan import Placement, Plan

# $/GB, public list prices of the first paid tier (2025): data leaving a cloud to the internet
# (including to another cloud), and between two regions of the same cloud.
EGRESS_INTERNET = {"aws": 0.09, "gcp": 0.12, "azure": 0.087, "local": 0.0, "ssh": 0.0}
EGRESS_INTER_REGION = {"aws": 0.02, "gcp": 0.02, "azure": 0.02, "local": 0.0, "ssh": 0.0}
STORE_SCHEMES = {"s3": "aws", "gs": "gcp", "az": "azure", "https": None, "r2": None}
DEFAULT_HOURS = 1.0


def egress_per_gb(src: tuple[str, str | None], dst: tuple[str, str | None]) -> float:
    """$/GB to move data from (cloud, region) src to dst; region None means unknown/any."""
    (sc, sr), (dc, dr) = src, dst
    if sc != dc:
        return EGRESS_INTERNET.get(sc, 0.09)
    if sr is None or dr is None or sr == dr:
        return 0.0
    return EGRESS_INTER_REGION.get(sc, 0.02)


def task_hours(task) -> float:
    """Estimated run time: job_recovery.duration when given, else one hour."""
    for res in task.resources:
        jr = getattr(res, "job_recovery", None) or {}
        if jr.get("duration"):
            return float(jr["duration"])
    return DEFAULT_HOURS


def _size_gb(spec) -> float:
    if not spec:
        return 0.0
    if isinstance(spec, dict):
        return float(sum(float(v or 0) for v in spec.values()))
    return 0.0


def _input_sources(task) -> list[tuple[tuple[str, None], float]]:
    """Bucket inputs (s3://, gs://, ...) as (cloud, unknown region) sources with sizes."""
    out = []
    for uri, size in (getattr(task, "inputs", None) or {}).items():
        scheme = str(uri).split("://", 1)[0] if "://" in str(uri) else None
        cloud = STORE_SCHEMES.get(scheme or "")
        if cloud:
            out.append(((cloud, None), float(size or 0)))
    return out


@dataclass
class DagPlan:
    """The chosen placement per task, the per-task plans reordered to prefer it, and costs."""

    tasks: list
    plans: list[Plan]
    chosen: list[Placement]
    compute_cost: float
    egress_cost: float
    edges: list[tuple[int, int]] = field(default_factory=list)

    @property
    def total_cost(self) -> float:
        return self.compute_cost + self.egress_cost


def _states(plan: Plan, hours: float) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Distinct (cloud, region) states of a plan, their cheapest cost and best row."""
    keys = np.char.add(np.char.add(plan.table.cloud.astype(str), "/"), plan.table.region.astype(str))
    uniq, first = np.unique(keys, return_index=True)  # plan rows are ranked: first = best
    order = np.argsort(first)
    rows = first[order]
    states = [tuple(str(k).split("/", 1)) for k in uniq[order]]
    return states, plan.hourly_cost[rows] * hours, rows


def _edge_matrix(src: list, dst: list, gb: float) -> np.ndarray:
    if gb <= 0:
        return np.zeros((len(src), len(dst)))
    return np.array([[egress_per_gb(s, d) * gb for d in dst] for s in src])


def optimize_dag(tasks: list, edges: list[tuple[int, int]] | None = None,
                 clouds: list[str] | None = None, table=None) -> DagPlan:
    """Place every task of a pipeline; `edges` default to a chain in the given order."""
    import networkx as nx

    if not tasks:
        raise SkyError("A pipeline needs at least one task.")
    n = len(tasks)
    edges = list(edges) if edges is not None else [(i, i + 1) for i in range(n - 1)]
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(g):
        raise SkyError("The pipeline's dependencies form a cycle.")
    plans = [optimize(t, clouds=clouds, table=table) for t in tasks]
    info = [_states(p, task_hours(t)) for p, t in zip(plans, tasks)]
    unary = []
    for t, (states, cost, _) in zip(tasks, info):
        u = cost.copy()
        for src, gb in _input_sources(t):
            u += np.array([egress_per_gb(src, s) * gb for s in states])
        unary.append(u)
    pair = {(a, b): _edge_matrix(info[a][0], info[b][0], _size_gb(getattr(tasks[a], "outputs", None)))
            for a, b in edges}
    if nx.is_forest(g.to_undirected()):
        choice = _solve_forest(g, unary, pair)
    else:
        choice = _solve_ilp(unary, pair)
    chosen, compute = [], 0.0
    for i, (plan, (states, cost, rows)) in enumerate(zip(plans, info)):
        s = choice[i]
        chosen.append(plan.placements[int(rows[s])])
        compute += float(cost[s])
        plans[i] = _prefer_state(plan, states[s])
    egress = float(sum(unary[i][choice[i]] - info[i][1][choice[i]] for i in range(n)))
    egress += float(sum(m[choice[a], choice[b]] for (a, b), m in pair.items()))
    return DagPlan(list(tasks), plans, chosen, compute, egress, edges)


def _solve_forest(g, unary: list[np.ndarray], pair: dict) -> list[int]:
    """Exact min-sum over a forest (in the undirected sense) by leaf-to-root DP."""
    import networkx as nx

    und = g.to_undirected()
    choice = [0] * len(unary)
    for comp in nx.connected_components(und):
        root = min(comp)
        order = list(nx.dfs_preorder_nodes(und, root))
        parent = {root: None}
        for u in order:
            for v in und.neighbors(u):
                if v not in parent:
                    parent[v] = u
        msg_total = {u: unary[u].astype(float).copy() for u in comp}
        argbest: dict[int, np.ndarray] = {}
        for v in reversed(order):
            p = parent[v]
            if p is None:
                continue
            m = pair[(p, v)] if (p, v) in pair else pair[(v, p)].T  # shape (|p|, |v|)
            tot = m + msg_total[v][None, :]
            argbest[v] = tot.argmin(axis=1)
            msg_total[p] += tot.min(axis=1)
        choice[root] = int(msg_total[root].argmin())
        for v in order:
            if parent[v] is not None:
                choice[v] = int(argbest[v][choice[parent[v]]])
    return choice


def _solve_ilp(unary: list[np.ndarray], pair: dict) -> list[int]:
    """Exact placement for a general DAG: a linearised quadratic assignment ILP."""
    try:
        import pulp
    except ImportError:  # pragma: no cover - pulp is a dependency
        raise SkyError("Planning a DAG with shared ancestors needs pulp: pip install pulp") from None
    # Exact pruning: a state whose own cost exceeds the task's best by more than all the
    # egress its edges could possibly save can never be optimal.
    slack = [0.0] * len(unary)
    for (a, b), m in pair.items():
        spread = float(m.max() - m.min()) if m.size else 0.0
        slack[a] += spread
        slack[b] += spread
    live = [np.flatnonzero(u <= u.min() + sl + 1e-9) for u, sl in zip(unary, slack)]
    prob = pulp.LpProblem("dag", pulp.LpMinimize)

    def var(name: str, cat: str = "Continuous"):
        # PuLP 3.x deprecates free-standing LpVariable in favour of prob.add_variable.
        if hasattr(prob, "add_variable"):
            return prob.add_variable(name, 0, None, cat=cat)
        return pulp.LpVariable(name, lowBound=0, cat=cat)

    x = [{int(s): var(f"x_{i}_{s}", "Binary") for s in lv}
         for i, lv in enumerate(live)]
    obj = [float(unary[i][s]) * v for i, xi in enumerate(x) for s, v in xi.items()]
    for xi in x:
        prob += pulp.lpSum(xi.values()) == 1
    for (a, b), m in pair.items():
        for s in x[a]:
            for t in x[b]:
                if m[s, t] <= 0:
                    continue
                y = var(f"y_{a}_{b}_{s}_{t}")
                prob += y >= x[a][s] + x[b][t] - 1
                obj.append(float(m[s, t]) * y)
    prob += pulp.lpSum(obj)
    solver = pulp.HiGHS(msg=False) if "HiGHS" in pulp.listSolvers(onlyAvailable=True) else pulp.PULP_CBC_CMD(msg=False)
    prob.solve(solver)
    return [max(xi, key=lambda s, xi=xi: xi[s].value() or 0) for xi in x]


def _prefer_state(plan: Plan, state: tuple[str, str]) -> Plan:
    """The plan with the chosen (cloud, region)'s rows first, the rest after (stable)."""
    in_state = (plan.table.cloud == state[0]) & (plan.table.region == state[1])
    order = np.concatenate([np.flatnonzero(in_state), np.flatnonzero(~in_state)])
    return Plan(plan.task_name, plan.num_nodes, plan.table.take(order), plan.spot[order],
                plan.hourly_cost[order], plan.alt[order], plan.sort_by, plan.rejected,
                plan.considered)
