"""Task -> ranked placements (the failover order); pipelines -> a placement per task."""

from skybroker.optimizer.dag import DagPlan, optimize_dag
from skybroker.optimizer.optimizer import optimize
from skybroker.optimizer.plan import Placement, Plan, Rejection

__all__ = ["DagPlan", "Placement", "Plan", "Rejection", "optimize", "optimize_dag"]
