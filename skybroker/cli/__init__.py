"""The `sky` command line: a thin click front end over `skybroker.core` / `skybroker.api`.

Subcommands live in their own modules and are imported only when invoked, so `sky --help`
stays fast (no numpy, rich or cloud SDK imports). To add a command, add one line to
`COMMANDS`: name -> (module, attribute, one-line help).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from skybroker import __version__

COMMANDS: dict[str, tuple[str, str, str]] = {
    "launch": ("skybroker.cli.launch", "launch", "Launch a task on the cheapest feasible placement (or plan it with --dryrun)."),
    "catalog": ("skybroker.cli.catalog", "catalog", "Refresh price catalogs from the clouds' APIs; show their source and age."),
    "show-gpus": ("skybroker.cli.show_gpus", "show_gpus", "List accelerators, where they are offered and at what price."),
    "exec": ("skybroker.cli.exec", "exec_", "Run a task or command on an existing cluster (queued as a job)."),
    "status": ("skybroker.cli.status", "status", "Show clusters and their state (--refresh asks the clouds)."),
    "queue": ("skybroker.cli.queue", "queue", "Show a cluster's job queue."),
    "logs": ("skybroker.cli.logs", "logs", "Print or follow a cluster job's logs."),
    "cancel": ("skybroker.cli.cancel", "cancel", "Cancel jobs on a cluster (kills them on every node)."),
    "stop": ("skybroker.cli.lifecycle", "stop", "Stop clusters (processes killed, nodes kept, billing stops)."),
    "start": ("skybroker.cli.lifecycle", "start", "Start stopped clusters."),
    "down": ("skybroker.cli.lifecycle", "down", "Terminate clusters; nothing is left running."),
    "autostop": ("skybroker.cli.autostop", "autostop", "Stop or down a cluster after it is idle, enforced on the cluster."),
    "cost-report": ("skybroker.cli.cost_report", "cost_report", "Estimated cost of every cluster launched."),
    "replay": ("skybroker.cli.replay", "replay", "Evaluate spot/on-demand deadline policies on real availability traces."),
    "jobs": ("skybroker.cli.jobs", "jobs", "Managed jobs: survive preemptions, meet deadlines on spot."),
    "check": ("skybroker.cli.check", "check", "Check which clouds have usable credentials (sky launch uses only those)."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, attr, _ = COMMANDS[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as e:
            from skybroker.utils.registry import did_you_mean

            if args and args[0] not in COMMANDS:
                raise click.UsageError(f"{e.message}{did_you_mean(args[0], COMMANDS)}", ctx) from None
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skybroker")
def cli() -> None:
    """skybroker: run tasks on the cheapest cloud placement, and meet deadlines on spot.

    Task files are SkyPilot-compatible YAML. The embedded `local` cloud needs no account:
    `sky launch examples/minimal.yaml` runs a job right here.
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning broker errors into one clear line (exit 1)."""
    try:
        # standalone_mode=False turns ctx.exit(code) into a return value: keep the code.
        rv = cli.main(args=argv, prog_name="sky", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the one place errors become messages
        from skybroker.errors import SkyError

        if isinstance(e, SkyError) and not os.environ.get("SKYBROKER_DEBUG"):
            click.secho(f"Error: {e}", fg="red", err=True)
            if e.hint:
                click.echo(f"Hint: {e.hint}", err=True)
            sys.exit(getattr(e, "returncode", 1) or 1)
        raise
    else:
        sys.exit(rv if isinstance(rv, int) else 0)
