"""Every YAML in tests/yamls: good ones parse, round-trip and meet their header
expectations; bad ones fail with the error fragment (and line) named in their header."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skybroker.task import Task, TaskValidationError, load_tasks

YAMLS = Path(__file__).parent / "yamls"
GOOD = sorted((YAMLS / "good").glob("*.yaml"))
BAD = sorted((YAMLS / "bad").glob("*.yaml"))


def header(path: Path) -> dict[str, list[str]]:
    """`# key: value` lines of the leading comment block -> {key: [values]}."""
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        m = re.match(r"^#\s*([a-z_]+):\s*(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2).strip())
    return out


def test_corpus_is_varied():
    assert len(GOOD) >= 30 and len(BAD) >= 30


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good(path: Path):
    h = header(path)
    tasks = load_tasks(path)
    if "tasks" in h:
        assert len(tasks) == int(h["tasks"][0])
    else:
        assert len(tasks) == 1
        assert Task.from_yaml(path) == tasks[0]
    task = tasks[0]
    if "alternatives" in h:
        assert len(task.resources) == int(h["alternatives"][0])
    if "ordered" in h:
        assert task.resources_ordered is (h["ordered"][0] == "true")
    if "missing_envs" in h:
        assert task.missing_envs() == [s.strip() for s in h["missing_envs"][0].split(",")]
    warnings = "\n".join(w for t in tasks for w in t.warnings)
    for fragment in h.get("warning", []):
        assert fragment.lower() in warnings.lower()
    if "warning" not in h:
        assert not warnings, warnings
    for t in tasks:
        again = Task.from_yaml_config(t.to_yaml_config())
        assert again == t
        assert Task.from_yaml_str(t.to_yaml()) == t


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad(path: Path):
    h = header(path)
    assert "error" in h, f"{path.name} needs an '# error: <fragment>' header"
    with pytest.raises(TaskValidationError) as info:
        load_tasks(path)
    message = str(info.value)
    assert h["error"][0].lower() in message.lower()
    assert message.startswith(str(path))
    if "line" in h:
        assert message.startswith(f"{path}:{h['line'][0]}: "), message
