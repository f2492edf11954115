"""Which files of a workdir to upload: `.skyignore` if present, else `.gitignore` (root level).

One Python implementation decides the file list for every transport (rsync --files-from,
SFTP, local copy), so what lands on a node never depends on which tool was available.
Supported: comments, blank lines, `!negation`, trailing `/` (directories), leading `/`
(anchored), `*`, `?`, `[..]` and `**`. `.git/` is never uploaded.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path


def _rules(root: Path) -> list[tuple[bool, bool, bool, str]]:
    """(negate, dir_only, anchored, pattern) per line of the ignore file in force."""
    for name in (".skyignore", ".gitignore"):
        path = root / name
        if path.is_file():
            break
    else:
        return []
    rules = []
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        rules.append((negate, dir_only, anchored, line.lstrip("/")))
    return rules


def _ignored(rel: str, is_dir: bool, rules: list[tuple[bool, bool, bool, str]]) -> bool:
    result = False
    base = rel.rsplit("/", 1)[-1]
    for negate, dir_only, anchored, pat in rules:
        if dir_only and not is_dir:
            continue
        target = rel if anchored else base
        if fnmatch.fnmatchcase(target, pat) or (anchored and "**" in pat and
                                                fnmatch.fnmatchcase(target, pat.replace("**/", ""))):
            result = not negate
    return result


def list_files(root: str | os.PathLike) -> list[str]:
    """Relative paths (files and symlinks) under root that are not ignored, sorted."""
    root = Path(root)
    rules = _rules(root)
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if d != ".git"
                             and not _ignored(rel_dir + d, True, rules))
        for f in sorted(filenames):
            if not _ignored(rel_dir + f, False, rules):
                out.append(rel_dir + f)
    return out
