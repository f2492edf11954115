"""Loading tasks with CLI overrides, and rendering plans (`sky launch --dryrun`)."""

from __future__ import annotations

import json
from typing import Any

import click

from skybroker.errors import SkyError

ALTERNATIVES_PER_CLOUD = 3


def _override_resources(res, opts: dict[str, Any]):
    """A Resources with the CLI's --cloud/--gpus/... applied, re-validated by the task layer."""
    from skybroker.task import Resources

    cfg = res.to_yaml_config()
    if opts.get("cloud"):
        if (cfg.get("cloud") or "").lower() != opts["cloud"].lower():
            for k in ("region", "zone", "infra", "instance_type", "image_id"):
                cfg.pop(k, None)
        cfg.pop("infra", None)
        cfg["cloud"] = opts["cloud"]
    for key, cli_key in (("region", "region"), ("zone", "zone"), ("accelerators", "gpus"),
                         ("instance_type", "instance_type"), ("cpus", "cpus"),
                         ("memory", "memory"), ("use_spot", "use_spot")):
        if opts.get(cli_key) is not None:
            if key in ("region", "zone"):
                cfg.pop("infra", None)
            if key == "accelerators" and str(opts[cli_key]).strip().lower() in ("none", ""):
                cfg.pop("accelerators", None)  # --gpus none: run without accelerators
                continue
            cfg[key] = opts[cli_key]
    return Resources.from_yaml_config(cfg)


def load_cli_tasks(path: str, envs: dict[str, str], opts: dict[str, Any],
                   require_envs: bool = True) -> list:
    """Tasks of a (possibly multi-document) YAML with CLI overrides; warnings printed."""
    from skybroker.task import load_tasks

    tasks = load_tasks(path, env_overrides=envs or None)
    for task in tasks:
        for w in task.warnings:
            click.secho(f"Warning: {w}", fg="yellow", err=True)
        if any(opts.get(k) is not None for k in ("cloud", "region", "zone", "gpus", "instance_type",
                                                  "cpus", "memory", "use_spot")):
            task.resources = [_override_resources(r, opts) for r in (task.resources or [_default()])]
        if opts.get("num_nodes") is not None:
            if opts["num_nodes"] < 1:
                raise click.BadParameter("--num-nodes must be >= 1.")
            task.num_nodes = opts["num_nodes"]
        if opts.get("name") and len(tasks) == 1:
            task.name = opts["name"]
        missing = task.missing_envs() if require_envs else []
        if missing:
            raise SkyError(
                f"{path}: envs.{missing[0]} has no value"
                + (f" (also {', '.join(missing[1:])})" if missing[1:] else "") + ".",
                hint=f"Supply it with --env {missing[0]}=VALUE.",
            )
    return tasks


def _default():
    from skybroker.task import Resources

    return Resources()


def _catalog_line(clouds: list[str]) -> str:
    from skybroker.catalog import catalog_info
    from skybroker.catalog.store import user_catalog_dir

    parts = []
    for c in clouds:
        try:
            info = catalog_info(c)
        except Exception:  # noqa: BLE001 - a missing date must not break a plan
            continue
        age = f" ({info.age.days} days old)" if info.age is not None else ""
        refreshed = " refreshed" if str(info.path).startswith(str(user_catalog_dir())) else ""
        parts.append(f"{c}{refreshed} as of {info.date or 'an unknown date'}{age}")
    return ("Prices: " + "; ".join(parts) + " (`sky catalog info` for sources;"
            " `sky catalog refresh` to update)") if parts else ""


def _rows_for_table(plan) -> list[int]:
    """The chosen row, then the best few distinct (instance type, spot) rows per cloud."""
    rows = [0]
    seen = {(plan.table.cloud[0], plan.table.instance_type[0], bool(plan.spot[0]))}
    per_cloud: dict[str, int] = {str(plan.table.cloud[0]): 1}
    for i in range(1, len(plan)):
        cloud = str(plan.table.cloud[i])
        key = (cloud, plan.table.instance_type[i], bool(plan.spot[i]))
        if key in seen or per_cloud.get(cloud, 0) >= ALTERNATIVES_PER_CLOUD:
            continue
        seen.add(key)
        per_cloud[cloud] = per_cloud.get(cloud, 0) + 1
        rows.append(i)
        if len(per_cloud) >= 5 and all(v >= ALTERNATIVES_PER_CLOUD for v in per_cloud.values()):
            break
    return rows


def _fmt_num(x) -> str:
    return "-" if x is None else f"{x:g}"


def render_plan(plan) -> str:
    """The chosen placement and the best alternatives per cloud, as a plain table."""
    from skybroker.cli.tables import table

    rows = []
    for rank, i in enumerate(_rows_for_table(plan)):
        p = plan.placements[i]
        o = p.offer
        gpus = f"{o.accelerator_name}:{o.accelerator_count:g}" if o.accelerator_name else "-"
        nodes = f"{p.num_nodes}x " if p.num_nodes > 1 else ""
        rows.append([p.infra, nodes + o.instance_type, _fmt_num(o.vcpus), _fmt_num(o.memory_gib),
                     gpus, "yes" if p.spot else "-", f"{p.hourly_cost:.4f}",
                     "<- chosen" if rank == 0 else ""])
    return table(["INFRA", "INSTANCE", "vCPUs", "Mem(GB)", "GPUS", "SPOT", "$/HR", ""], rows,
                 right=(2, 3, 6))


def show_plan(tasks: list, clouds: list[str] | None, sort_by: str, as_json: bool) -> None:
    """Plan every task and print the plan (table) or the whole ranked plan (JSON)."""
    from skybroker.optimizer import optimize, optimize_dag
    from skybroker.optimizer.dag import task_hours

    if len(tasks) == 1:
        plans = [optimize(tasks[0], clouds=clouds, sort_by=sort_by)]
        dag = None
    else:
        dag = optimize_dag(tasks, clouds=clouds)
        plans = dag.plans
    if as_json:
        out: dict[str, Any] = {"tasks": []}
        for task, plan in zip(tasks, plans):
            out["tasks"].append({"name": task.name, "num_nodes": plan.num_nodes,
                                 "considered": plan.considered, "placements": plan.to_json()})
        if len(tasks) == 1:
            out = {"name": tasks[0].name, **out["tasks"][0]}
        else:
            out["compute_cost"] = round(dag.compute_cost, 6)
            out["egress_cost"] = round(dag.egress_cost, 6)
        click.echo(json.dumps(out, indent=1))
        return
    for n, (task, plan) in enumerate(zip(tasks, plans)):
        name = task.name or (f"task {n + 1}" if len(tasks) > 1 else "task")
        clouds_in = sorted(set(plan.table.cloud.tolist()))
        click.echo(f"{click.style(name, bold=True)}: {plan.considered:,} offers considered, "
                   f"{len(plan):,} feasible placements on {', '.join(clouds_in)}.")
        click.echo(render_plan(plan))
        best = plan.best
        hours = task_hours(task)
        has_estimate = any((r.job_recovery or {}).get("duration") for r in task.resources)
        est = (f" ≈ ${best.hourly_cost * hours:,.2f} for {hours:g} h" if has_estimate else "")
        click.echo(f"Chosen: {click.style(best.describe(), bold=True)} at "
                   f"${best.hourly_cost:.4f}/h{est}.")
    if dag is not None:
        click.echo(f"Pipeline: compute ${dag.compute_cost:,.2f} + egress ${dag.egress_cost:,.2f}"
                   f" = ${dag.total_cost:,.2f} (compute at each task's estimated hours).")
    line = _catalog_line(sorted({c for p in plans for c in set(p.table.cloud.tolist())}))
    if line:
        click.echo(click.style(line, dim=True))
