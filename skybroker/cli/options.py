"""Options shared by commands that take a task (launch, exec, jobs launch)."""

from __future__ import annotations

import functools

import click

RESOURCE_OVERRIDES = ("cloud", "region", "zone", "gpus", "instance_type", "cpus", "memory",
                      "use_spot", "num_nodes", "name")


def resource_options(f):
    """--cloud/--region/--zone/--gpus/... that override the task's resources."""
    opts = [
        click.option("--cloud", metavar="CLOUD", help="Only this cloud (aws, gcp, azure, local, ssh)."),
        click.option("--region", metavar="REGION", help="Only this region."),
        click.option("--zone", metavar="ZONE", help="Only this zone."),
        click.option("--gpus", metavar="NAME[:COUNT]", help="Accelerators, e.g. A100:8 (overrides resources.accelerators); 'none' drops them, e.g. to rehearse a GPU task on the local cloud."),
        click.option("-t", "--instance-type", metavar="TYPE", help="Instance type, e.g. p3.2xlarge."),
        click.option("--cpus", metavar="N[+]", help="vCPUs per node; '4+' means at least 4."),
        click.option("--memory", metavar="GB[+]", help="Memory per node in GiB; '32+' means at least 32."),
        click.option("--use-spot/--no-use-spot", default=None, help="Spot instances (or on-demand only)."),
        click.option("--num-nodes", type=int, metavar="N", help="Number of nodes."),
        click.option("-n", "--name", metavar="NAME", help="Task name."),
    ]
    return functools.reduce(lambda acc, opt: opt(acc), reversed(opts), f)


def env_options(f):
    f = click.option("--env-file", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="A dotenv file of KEY=VALUE lines (applied before --env).")(f)
    return click.option("--env", multiple=True, metavar="KEY[=VALUE]",
                        help="Set (or override) an env var of the task; KEY alone takes it "
                             "from your environment. Repeatable.")(f)


def parse_envs(pairs: tuple[str, ...], env_file: str | None = None) -> dict[str, str]:
    """--env K=V / K (from os.environ) and a dotenv file -> dict."""
    import os

    out: dict[str, str] = {}
    if env_file:
        with open(env_file) as fh:
            for n, line in enumerate(fh, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if "=" not in line:
                    raise click.BadParameter(f"{env_file}:{n}: expected KEY=VALUE, got {line!r}")
                k, v = line.split("=", 1)
                out[k.strip().removeprefix("export ").strip()] = v.strip().strip("'\"")
    for p in pairs:
        if "=" in p:
            k, v = p.split("=", 1)
        elif p in os.environ:
            k, v = p, os.environ[p]
        else:
            raise click.BadParameter(f"--env {p}: give KEY=VALUE, or set {p} in your environment.")
        if not k:
            raise click.BadParameter(f"--env {p!r}: empty key.")
        out[k] = v
    return out
