"""`sky replay`: evaluate deadline policies on real spot-availability traces.

Thin: parse, call `skybroker.replay`, render. numpy, rich and matplotlib are imported inside
the command, so `sky --help` never pays for them.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

DEFAULT_POLICIES = "on_demand,greedy,uniform_progress"
_PROGRESS_MIN = 3000  # (policy, run) pairs from which a progress bar is worth showing


def _hours(value: str, what: str) -> float:
    from skybroker.utils.units import parse_duration_hours

    try:
        return parse_duration_hours(value, what)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=f"--{what}") from None


def _hours_list(value: str, what: str) -> list[float]:
    return [_hours(v, what) for v in value.split(",") if v.strip()]


def _default_policies() -> str:
    from skybroker.policy import policy_names

    return DEFAULT_POLICIES + (",best" if "best" in policy_names(include_aliases=True) else "")


def _epilog() -> str:
    return """\b
Examples:
  sky replay --trace traces/spot-traces/availability/1-node/aws-10-26-2022/us-west-2a_v100_1.json \\
      --policy up,greedy,on_demand --duration 48h --deadline 52h --restart-overhead 0.2h \\
      --length-ticks 554
  sky replay --runs traces/runs/adrs_single_region_eval.tsv --policy up,greedy --json
  sky replay --trace a.json --trace b.json --nodes 4 ...   (several zones, 4-node gangs)
  sky replay ... --plot out.png                           (cost vs deadline + one run's timeline)
"""


@click.command("replay", epilog=_epilog())
@click.option("--trace", "traces", multiple=True, type=click.Path(dir_okay=False),
              help="Trace file (spot-traces .json or .csv, 1 = available). Repeat for several "
                   "zones on one time axis; the policy picks the zone.")
@click.option("--runs", "runs_file", type=click.Path(exists=True, dir_okay=False),
              help="Batch: a TSV of runs (trace, start_tick, length_ticks, duration_h, deadline_h, "
                   "restart_overhead_h; trace paths relative to the file; extra columns ignored).")
@click.option("--policy", "policies", default=None, metavar="NAME[,NAME...]",
              help="Policies to compare (default: on_demand,greedy,uniform_progress[,best]). "
                   "'optimum' adds the omniscient optimum. See --list-policies.")
@click.option("--duration", default=None, metavar="48h", help="Work the job needs (C0).")
@click.option("--deadline", default=None, metavar="52h[,70h...]",
              help="Deadline from the window's start (R0); a comma list replays each.")
@click.option("--restart-overhead", default="0.2h", show_default=True, metavar="0.2h",
              help="Changeover delay d paid on every (re)start.")
@click.option("--start-tick", default=0, show_default=True, type=click.IntRange(min=0),
              help="First tick of the trace window.")
@click.option("--length-ticks", default=None, type=click.IntRange(min=1),
              help="Window length in ticks (default: to the end of the trace).")
@click.option("--nodes", default=None, type=click.IntRange(min=1),
              help="Gang size: spot counts as available when the trace's count >= N (default 1).")
@click.option("--price-od", default=None, type=float, help="On-demand $/h per node (default 3.06).")
@click.option("--price-spot", default=None, type=float, help="Spot $/h per node (default 0.9731).")
@click.option("--trace-gap", default=None, metavar="10m",
              help="Tick length of 'tick,available' CSV traces that do not state it.")
@click.option("--inverted-trace", is_flag=True,
              help="The traces use the inverted convention (1 = preempted).")
@click.option("--json", "as_json", is_flag=True, help='Print {"runs": [...], "summary": {...}}.')
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG: cost vs deadline per policy and a timeline of one run.")
@click.option("--plot-run", default=0, show_default=True, type=click.IntRange(min=0),
              help="Which run (0-based, in runs-file order) the timeline shows.")
@click.option("--by", "by", default=None, metavar="deadline,overhead",
              help="Also summarise per group of runs sharing these fields (deadline, overhead, "
                   "duration, trace, nodes).")
@click.option("--fit-hazards", "fit_traces", multiple=True, type=click.Path(dir_okay=False),
              help="Fit best's (hazard_dp's) run-length model on these traces (repeatable; "
                   "your own zone's history, one tick length, gang size --nodes) instead of "
                   "the shipped model.")
@click.option("--hazards", "hazards_file", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Use a hazards JSON (from --save-hazards) for best/hazard_dp.")
@click.option("--save-hazards", "save_hazards", type=click.Path(dir_okay=False), default=None,
              help="Write the model fitted by --fit-hazards to this JSON (reuse it with "
                   "--hazards or HazardDP(hazards=PATH)).")
@click.option("--list-policies", is_flag=True, help="List the policies and exit.")
def replay(traces, runs_file, policies, duration, deadline, restart_overhead, start_tick,
           length_ticks, nodes, price_od, price_spot, trace_gap, inverted_trace, as_json,
           plot_out, plot_run, by, fit_traces, hazards_file, save_hazards,
           list_policies) -> None:
    """Replay spot/on-demand deadline policies on real spot-availability traces.

    Each run is a job of --duration hours of work that must finish by --deadline on a window
    of a trace. Every tick a policy chooses spot, on-demand or idle; a change costs
    --restart-overhead of lost work, and each tick run is billed in full. The semantics are
    those of the "Can't Be Late" (NSDI'24) simulator, reproduced exactly (docs/replay.md).

    Output: per policy, mean / p50 / p90 cost, cost normalised to on-demand-only, and deadline
    misses (or every run's record with --json).
    """
    from skybroker.errors import SkyError
    from skybroker.replay.engine import DEFAULT_PRICE_OD, DEFAULT_PRICE_SPOT

    if list_policies:
        _print_policies()
        return
    ps = DEFAULT_PRICE_SPOT if price_spot is None else price_spot
    po = DEFAULT_PRICE_OD if price_od is None else price_od
    if ps < 0 or po < 0:
        raise click.BadParameter("prices must be >= 0")
    from skybroker.replay import api

    try:
        names = api.resolve_policies(policies or _default_policies())
    except SkyError as e:
        raise click.BadParameter(str(e), param_hint="--policy") from None
    gap_s = _hours(trace_gap, "trace-gap") * 3600 if trace_gap else None
    params = _hazard_params(fit_traces, hazards_file, save_hazards, nodes or 1, gap_s,
                            inverted_trace)
    if bool(traces) == bool(runs_file):
        if save_hazards and not traces:  # fit and save only
            click.echo(f"Wrote {save_hazards}")
            return
        raise click.UsageError("give either --trace FILE (repeatable) or --runs RUNS.tsv")
    from skybroker.replay.runs import RunSpec, TraceCache, load_runs

    cache = TraceCache(gap_s=gap_s, inverted=inverted_trace)
    if runs_file:
        for opt, v in (("--duration", duration), ("--deadline", deadline)):
            if v is not None:
                raise click.UsageError(f"{opt} comes from the runs file; drop it with --runs")
        specs = load_runs(runs_file, nodes=nodes)
    else:
        if duration is None or deadline is None:
            raise click.UsageError("--duration and --deadline are required with --trace")
        c0 = _hours(duration, "duration")
        d = _hours(restart_overhead, "restart-overhead")
        if c0 <= 0:
            raise click.BadParameter("must be > 0", param_hint="--duration")
        paths = tuple(str(Path(t)) for t in traces)
        label = "+".join(traces)
        specs = [RunSpec(paths, c0, dl, d, start_tick, length_ticks, nodes or 1, label)
                 for dl in _hours_list(deadline, "deadline")]
    result = _run(api, specs, names, ps, po, cache, params)
    for w in result.warnings:
        click.secho(f"Warning: {w}", fg="yellow", err=True)
    if plot_out:
        _plot(api, specs, names, ps, po, cache, result, plot_out, plot_run, params)
    keys = [b.strip() for b in by.split(",") if b.strip()] if by else []
    groups = api.summarize_by(result.records, result.policies, keys) if keys else None
    if as_json:
        doc = result.to_json()
        if groups is not None:
            doc["by"] = groups
        click.echo(json.dumps(_jsonable(doc), indent=1))
    else:
        _render(result, specs, ps, po, keys, groups)
    if plot_out and not as_json:
        click.echo(f"Wrote {plot_out}")


def _hazard_params(fit_traces, hazards_file, save_to, nodes, gap_s, inverted) -> dict:
    """policy_params for hazard_dp from --fit-hazards / --hazards ({} when neither is given)."""
    if fit_traces and hazards_file:
        raise click.UsageError("give --fit-hazards TRACE... or --hazards FILE, not both")
    if save_to and not fit_traces:
        raise click.UsageError("--save-hazards writes the model fitted by --fit-hazards TRACE")
    from skybroker.policy import hazard_fit
    from skybroker.traces import load_trace

    if hazards_file:
        try:
            return {"hazard_dp": {"hazards": hazard_fit.load_hazards(hazards_file)}}
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--hazards") from None
    if not fit_traces:
        return {}
    try:
        loaded = [load_trace(t, gap_s=gap_s, inverted=inverted) for t in fit_traces]
        h = hazard_fit.fit_hazards(loaded, nodes=nodes)
    except (OSError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="--fit-hazards") from None
    if save_to:
        hazard_fit.save_hazards(h, save_to, source=", ".join(
            f"{Path(t).name} (nodes={nodes})" for t in fit_traces))
    return {"hazard_dp": {"hazards": h}}


def _run(api, specs, names, ps, po, cache, params=None):
    total = len(specs) * len(names)
    # The optimum is a DP per run (tens of ms each), so even modest batches deserve a bar.
    slow = "optimum" in names and len(specs) >= 20
    if (total < _PROGRESS_MIN and not slow) or not sys.stderr.isatty():
        return api.evaluate(specs, names, ps, po, cache, policy_params=params)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("replaying"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("replay", total=total)
        return api.evaluate(specs, names, ps, po, cache, policy_params=params,
                            progress=lambda k: bar.advance(task, k))


def _plot(api, specs, names, ps, po, cache, result, out, run_index, params=None):
    """Curves from the result (or a deadline sweep for a single run) + one run's timeline."""
    from dataclasses import replace

    from skybroker.replay.plots import plot_replay

    if run_index >= len(specs):
        raise click.BadParameter(f"only {len(specs)} run(s)", param_hint="--plot-run")
    curves = result
    if len({s.deadline_h for s in specs}) == 1:  # one deadline: sweep it for the curve
        s0 = specs[run_index]
        gap_h = cache.window(s0).gap_s / 3600.0
        sweep = _deadline_grid(s0.duration_h, s0.restart_overhead_h, s0.deadline_h, gap_h)
        curves = api.evaluate([replace(s0, deadline_h=x) for x in sweep], names, ps, po, cache,
                              policy_params=params)
    one = api.evaluate([specs[run_index]], names, ps, po, cache, timeline_run=0,
                       policy_params=params)
    s = specs[run_index]
    title = f"{Path(s.traces[0]).stem if len(s.traces) == 1 else s.label}  (window from tick {s.start_tick})"
    plot_replay(curves, one, out, title=title, policies=names)


def _deadline_grid(c0: float, d: float, deadline: float, gap_h: float, points: int = 10) -> list[float]:
    """Deadlines for the cost curve: from the first feasible one (on-demand from the start
    just makes it, in whole ticks) to twice the job, on a step anchored at the given deadline."""
    lo = math.ceil((c0 + d) / gap_h - 1e-9) * gap_h
    hi = max(deadline, 2 * c0)
    step = max((hi - lo) / (points - 1), gap_h)
    k_lo, k_hi = math.ceil((lo - deadline) / step - 1e-9), math.floor((hi - deadline) / step + 1e-9)
    grid = {round(deadline + k * step, 6) for k in range(k_lo, k_hi + 1)}
    return sorted(grid | {round(lo, 6), round(deadline, 6)} if deadline >= lo else grid | {round(lo, 6)})


def _jsonable(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def _print_policies() -> None:
    from skybroker.policy import describe_policies, policy_aliases
    from skybroker.replay.api import OPTIMUM, optimum_available

    aliases: dict[str, list[str]] = {}
    for a, n in policy_aliases().items():
        aliases.setdefault(n, []).append(a)
    for name, desc in describe_policies().items():
        extra = f" (alias: {', '.join(sorted(aliases[name]))})" if name in aliases else ""
        click.echo(f"{name}{extra}: {desc}")
    if optimum_available():
        click.echo(f"{OPTIMUM}: the omniscient optimum (knows the whole window; a lower bound, not a policy)")


def _render(result, specs, ps, po, by: list[str] | None = None, groups=None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 120, highlight=False)
    n = len(specs)
    table = Table(title=f"{n} run{'s' if n != 1 else ''}, spot ${ps:g}/h, on-demand ${po:g}/h",
                  title_justify="left")
    table.box = box.SIMPLE_HEAD  # fits 80 columns with the longest policy names
    sections = groups if groups is not None else [{"group": {}, "summary": result.summary}]
    group_cols = list(sections[0]["group"]) if sections else []
    for g in group_cols:
        table.add_column(g.removesuffix("_h").replace("restart_", ""), no_wrap=True)
    table.add_column("policy", no_wrap=True)
    gap = any("gap_closed" in s for sec in sections for s in sec["summary"].values())
    cols = ["mean $", "p50 $", "p90 $", "vs OD", "misses", "starts", "spot"]
    for col in cols + (["gap closed"] if gap else []):
        table.add_column(col, justify="right", no_wrap=True)
    for sec in sections:
        first = True
        for p, s in sec["summary"].items():
            lead = [(f"{v:g}" if isinstance(v, float) else str(v)) if first else ""
                    for v in sec["group"].values()]
            row = [*lead, p, f"{s['mean_cost']:,.2f}", f"{s['p50_cost']:,.2f}", f"{s['p90_cost']:,.2f}",
                   f"{s['norm_cost']:.1%}" if math.isfinite(s["norm_cost"]) else "-",
                   str(s["misses"]) if s["misses"] == 0 else f"[red]{s['misses']}[/red]",
                   f"{s['mean_switches']:.1f}", f"{s['spot_share']:.0%}"]
            if gap:
                v = s.get("gap_closed", float("nan"))
                row.append(f"{v:.1%}" if math.isfinite(v) else "-")
            table.add_row(*row, end_section=p == list(sec["summary"])[-1] and bool(group_cols))
            first = False
    console.print(table)
    if n == 1:
        for r in result.records:
            console.print(f"  {r['policy']}: done at {r['finish_h']:.2f} h "
                          f"({'met' if r['met'] else '[red]MISSED[/red]'}); spot {r['spot_h']:.1f} h, "
                          f"on-demand {r['od_h']:.1f} h, idle {r['idle_h']:.1f} h; "
                          f"{r['switches']} starts, {r['preemptions']} preemptions")
