"""Write the local "rehearsal" twin of an example task YAML: same envs, setup, run and workdir,
on the embedded `local` cloud without accelerators, and with checkpoints in a directory of this
machine instead of a cloud bucket.

    python examples/rehearse.py examples/vicuna/finetune.yaml -o /tmp/r.yaml
    sky launch -y /tmp/r.yaml                          # runs the CPU stand-in, checkpoints
    python examples/rehearse.py examples/genomics/kmer.yaml --zone local-b -o /tmp/k.yaml
    sky jobs launch -y /tmp/k.yaml --deadline 150m --duration 100m --restart-overhead 20m

What changes, per task of the file (multi-document pipelines too):
* resources -> `{cloud: local}` (plus `zone` and `use_spot` when asked / when the original
  wants spot), keeping `job_recovery` (deadline, duration, ...) and `ports`;
* file_mounts from buckets (`s3://...`, or storage mappings) are dropped: the local cloud only
  copies local paths; local paths and the workdir become absolute;
* envs: REHEARSAL=1 (the scripts' CPU stand-in), CKPT_DIR=<--ckpt-dir>/<task name> (a directory
  of this machine, outside the node sandboxes, so it survives a preemption like a bucket), and
  envs without a value get a placeholder.
Why a separate file rather than flags: the bucket mounts cannot run on `local` at all, and the
twin is a plain task YAML you can read, edit and run with every `sky` command.
"""

from __future__ import annotations

import argparse
import os
import sys

import yaml

KEEP_RESOURCE_KEYS = ("job_recovery", "spot_recovery", "ports")


class _Dumper(yaml.SafeDumper):
    """Scripts as `|` blocks, as people write them."""


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _home() -> str:
    return os.environ.get("SKYBROKER_HOME") or os.path.expanduser("~/.sky")


def _wants_spot(res) -> bool:
    if isinstance(res, list):
        return any(_wants_spot(r) for r in res)
    if not isinstance(res, dict):
        return False
    alts = (res.get("any_of") or []) + (res.get("ordered") or [])
    return bool(res.get("use_spot")) or any(_wants_spot(a) for a in alts)


def _resources(res, zone: str | None, spot: bool | None) -> dict:
    first = res[0] if isinstance(res, list) and res else (res if isinstance(res, dict) else {})
    out: dict = {"cloud": "local"}
    if zone:
        out["zone"] = zone
    use_spot = _wants_spot(res) if spot is None else spot
    if use_spot:
        out["use_spot"] = True
    for key in KEEP_RESOURCE_KEYS:
        if key in first:
            out[key] = first[key]
    return out


def _is_local_path(src) -> bool:
    return isinstance(src, str) and "://" not in src


def rehearsal_doc(doc: dict, *, base_dir: str, ckpt_root: str, zone: str | None = None,
                  spot: bool | None = None) -> tuple[dict, list[str]]:
    """The twin of one task document, and notes on what was dropped."""
    notes: list[str] = []
    out = dict(doc)
    if set(doc) <= {"name"}:
        return out, notes  # a pipeline's name document
    name = str(doc.get("name") or "task")
    out["resources"] = _resources(doc.get("resources") or {}, zone, spot)
    wd = doc.get("workdir")
    if isinstance(wd, str):
        out["workdir"] = os.path.abspath(os.path.join(base_dir, os.path.expanduser(wd)))
    mounts = {}
    for dst, src in (doc.get("file_mounts") or {}).items():
        if _is_local_path(src):
            mounts[dst] = os.path.abspath(os.path.join(base_dir, os.path.expanduser(src)))
        else:
            notes.append(f"{name}: dropped file_mounts {dst} (a bucket: `local` copies local paths only)")
    if mounts:
        out["file_mounts"] = mounts
    else:
        out.pop("file_mounts", None)
    envs = {k: ("rehearsal" if v is None else v) for k, v in (doc.get("envs") or {}).items()}
    envs["REHEARSAL"] = "1"
    envs["CKPT_DIR"] = os.path.join(ckpt_root, name)
    out["envs"] = envs
    if doc.get("secrets"):
        out["secrets"] = {k: ("rehearsal" if v is None else v) for k, v in doc["secrets"].items()}
    return out, notes


def rehearsal_yaml(path: str, *, ckpt_root: str | None = None, zone: str | None = None,
                   spot: bool | None = None, base_dir: str | None = None) -> str:
    """The twin of the task file at `path`, as YAML text (multi-document for pipelines)."""
    from skybroker.task import load_pipeline

    pipe = load_pipeline(path)  # validated, envs interpolated into file_mounts and workdir
    docs = [t.to_yaml_config() for t in pipe.tasks]
    if len(docs) > 1 and pipe.name:
        docs.insert(0, {"name": pipe.name})
    ckpt_root = os.path.abspath(ckpt_root or os.path.join(_home(), "rehearsals"))
    out = []
    for doc in docs:
        twin, notes = rehearsal_doc(doc, base_dir=base_dir or os.getcwd(), ckpt_root=ckpt_root,
                                    zone=zone, spot=spot)
        for n in notes:
            print(f"rehearse: {n}", file=sys.stderr)
        out.append(twin)
    head = f"# Local rehearsal of {path} (written by examples/rehearse.py; REHEARSAL=1).\n"
    return head + yaml.dump_all(out, Dumper=_Dumper, sort_keys=False,
                                default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("task", help="an example task YAML (one task or a pipeline)")
    ap.add_argument("-o", "--output", help="write here (default: stdout)")
    ap.add_argument("--ckpt-dir", help="checkpoint root on this machine "
                                       "(default: $SKYBROKER_HOME/rehearsals or ~/.sky/rehearsals)")
    ap.add_argument("--zone", help="pin a local zone, e.g. local-b bound to a spot trace")
    ap.add_argument("--spot", action=argparse.BooleanOptionalAction, default=None,
                    help="use spot (default: as the original task)")
    args = ap.parse_args(argv)
    text = rehearsal_yaml(args.task, ckpt_root=args.ckpt_dir, zone=args.zone, spot=args.spot)
    from skybroker.task import load_tasks_str

    load_tasks_str(text)  # the twin must be a valid task file
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print(f"rehearse: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
