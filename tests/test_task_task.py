"""Task: envs and ${VAR} interpolation, --env overrides, the YAML round trip, pipelines,
warnings for unsupported keys, and errors that name file, line and field."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from skybroker.task import Resources, Task, TaskValidationError, load_pipeline, load_tasks


def write(tmp_path: Path, text: str, name: str = "task.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- envs ----------------------------------------------------------------------------------


ENVS = """\
envs:
  MODEL: llama
  SIZE: 7
  OUT: /ckpt/${MODEL}-${SIZE}b
  HOME_DIR: ${HOME}/x
  PATH: ${PATH}:/opt/bin
  TOKEN:
file_mounts:
  /models/${MODEL}: s3://bucket/${MODEL}-${SIZE}b/${TOKEN}
workdir: ~/src/${MODEL}
setup: pip install ${MODEL}
run: echo ${OUT} ${TOKEN}
"""


def test_env_interpolation_semantics():
    t = Task.from_yaml_str(ENVS)
    assert t.envs["OUT"] == "/ckpt/llama-7b"  # envs reference each other
    assert t.envs["HOME_DIR"] == "${HOME}/x"  # unknown vars are left for the shell
    assert t.envs["PATH"] == "${PATH}:/opt/bin"  # a self-reference is the shell's PATH
    assert t.file_mounts == {"/models/llama": "s3://bucket/llama-7b/${TOKEN}"}
    assert t.workdir == "~/src/llama"
    assert t.run == "echo ${OUT} ${TOKEN}"  # scripts verbatim: the shell expands them
    assert t.expand(t.run) == "echo /ckpt/llama-7b ${TOKEN}"
    assert t.missing_envs() == ["TOKEN"]


def test_references_to_a_self_referencing_env_are_left_for_the_shell():
    t = Task.from_yaml_str("envs:\n  PATH: ${PATH}:/opt\n  P2: ${PATH}:/x\n  Q: ${P2}\n")
    assert t.envs == {"PATH": "${PATH}:/opt", "P2": "${PATH}:/x", "Q": "${P2}"}
    assert Task.from_yaml_config(t.to_yaml_config()) == t


def test_warnings_follow_the_file_order():
    t = Task.from_yaml_str("service: {}\nresources:\n  candidates: [{}]\nconfig: {}\n")
    assert [w.split(":")[1] for w in t.warnings] == ["1", "3", "4"]


def test_env_overrides_win_everywhere():
    t = Task.from_yaml_str(ENVS, env_overrides={"MODEL": "mistral", "TOKEN": "t0k", "NEW": 1})
    assert t.envs["OUT"] == "/ckpt/mistral-7b"
    assert t.file_mounts == {"/models/mistral": "s3://bucket/mistral-7b/t0k"}
    assert t.envs["NEW"] == "1" and t.missing_envs() == []
    t.check_launchable()


def test_check_launchable_names_missing_envs(tmp_path):
    t = Task.from_yaml(write(tmp_path, "envs:\n  A:\n  B: null\n"))
    with pytest.raises(TaskValidationError, match=r"envs without a value: A, B.*--env A="):
        t.check_launchable()


def test_env_values_keep_their_text():
    t = Task.from_yaml_str("envs:\n  V: 1.10\n  D: yes\n  O: 0123\n  E: ''\n  N: 3\n")
    assert t.envs == {"V": "1.10", "D": "yes", "O": "0123", "E": "", "N": "3"}
    # a plain dict (Python API) has no source text: str() it, as SkyPilot does
    assert Task.from_yaml_config({"envs": {"N": 3, "B": True}}).envs == {"N": "3", "B": "True"}


def test_env_override_name_is_checked():
    with pytest.raises(TaskValidationError, match="--env 'A B': invalid name"):
        Task.from_yaml_str("run: x", env_overrides={"A B": "1"})


def test_secrets_are_not_interpolated_and_can_be_redacted():
    t = Task.from_yaml_str("secrets:\n  KEY: s3cret\n  OTHER:\nenvs:\n  A: ${KEY}\n")
    assert t.envs["A"] == "${KEY}" and t.missing_secrets() == ["OTHER"]
    assert "s3cret" not in t.to_yaml(redact_secrets=True)
    assert "s3cret" in t.to_yaml()


# ---- top-level fields ------------------------------------------------------------------------


def test_workdir_git():
    t = Task.from_yaml_str("envs: {REF: v1}\nworkdir:\n  url: https://x/y.git\n  ref: ${REF}\n")
    assert t.workdir == {"url": "https://x/y.git", "ref": "v1"}


def test_workdir_git_unknown_key():
    with pytest.raises(TaskValidationError, match="workdir.branch: .*Did you mean 'ref'"):
        Task.from_yaml_str("workdir:\n  url: https://x/y.git\n  branch: main\n")


@pytest.mark.parametrize("value", ["1.5", "true", "-1", "'2'"])
def test_num_nodes_errors(value):
    with pytest.raises(TaskValidationError, match="<string>:1: num_nodes: must be a whole"):
        Task.from_yaml_str(f"num_nodes: {value}\n")


def test_inputs_outputs():
    t = Task.from_yaml_str("inputs:\n  s3://a/b: 100\noutputs:\n  gs://c: 1.5\n")
    assert t.inputs == {"s3://a/b": 100.0} and t.outputs == {"gs://c": 1.5}


def test_defaults():
    t = Task.from_yaml_str("")
    assert t.num_nodes == 1 and t.resources == [Resources()] and not t.resources_ordered
    assert t.envs == {} and t.run is None and t.warnings == []


@pytest.mark.parametrize(
    "key, fragment",
    [("service", "SkyServe"), ("config", "config overrides"), ("experimental", "experimental"),
     ("event_callback", "event callbacks"), ("volumes", "volumes")],
)  # fmt: skip
def test_unsupported_sections_warn_and_round_trip(key, fragment):
    t = Task.from_yaml_str(f"run: x\n{key}:\n  a: 1\n", source="t.yaml")
    assert len(t.warnings) == 1 and t.warnings[0].startswith(f"t.yaml:2: {key}: ")
    assert fragment in t.warnings[0]
    assert t.to_yaml_config()[key] == {"a": 1}


def test_python_construction():
    t = Task(run="echo", resources=Resources(cloud="aws"), num_nodes=2)
    assert t.resources == [Resources(cloud="aws")]
    with pytest.raises(TaskValidationError, match="num_nodes"):
        Task(num_nodes=0)


# ---- errors: file, line, field -------------------------------------------------------------


def test_error_names_file_line_and_field(tmp_path):
    path = write(tmp_path, "name: x\n\nresources:\n  cloud: aws\n\n\n  accelerators: {A100: x}\n")
    with pytest.raises(TaskValidationError) as info:
        Task.from_yaml(path)
    assert str(info.value) == (
        f"{path}:7: resources.accelerators: count must be a positive number, got 'x'"
    )
    assert (info.value.line, info.value.field) == (7, "resources.accelerators")


def test_error_in_any_of_item_has_its_own_line():
    text = "resources:\n  any_of:\n    - cpus: 2\n    - cpus: 4\n      memory: lots\n"
    with pytest.raises(TaskValidationError, match=r"^<string>:5: resources.any_of\[1\].memory"):
        Task.from_yaml_str(text)


def test_error_without_a_file_omits_the_location():
    with pytest.raises(TaskValidationError, match=r"^resources.cpus: expected a number"):
        Task.from_yaml_config({"resources": {"cpus": "many"}})


def test_duplicate_keys_name_both_lines():
    with pytest.raises(TaskValidationError, match="t.yaml:4: duplicate key 'cpus'.*line 2"):
        Task.from_yaml_str("resources:\n  cpus: 2\n  memory: 4\n  cpus: 8\n", source="t.yaml")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TaskValidationError, match="no such task file"):
        Task.from_yaml(tmp_path / "nope.yaml")
    with pytest.raises(TaskValidationError, match="is a directory"):
        Task.from_yaml(tmp_path)


# ---- round trip ----------------------------------------------------------------------------


ROUND_TRIP = [
    ENVS,
    "resources:\n  accelerators: {A100: 8, H100: 8}\n  any_of: [{use_spot: true}, {}]\n",
    "resources:\n  - infra: aws/us-east-1/us-east-1a\n  - {cloud: gcp, accelerators: K80:0.5}\n",
    "resources:\n  cloud: aws\n  image_id: {us-east-1: ami-1}\n  ports: [80, 8000-8010]\n",
    "resources:\n  job_recovery: {strategy: failover, deadline: 10h, duration: 0.333333333}\n",
    "num_nodes: 4\nworkdir: {url: u, ref: main}\nsecrets: {K: v}\ninputs: {s3://x: 3}\n",
    "resources:\n  labels: {a: b}\n  disk_size: 100\n  disk_tier: low\n  memory: 1.5+\n",
    "resources:\n  cloud: aws\n  any_of:\n    - region: us-east-1\n    - cloud: gcp\n",
    "service: {replicas: 2}\nrun: |\n  echo a\n  echo b\n",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(text):
    t = Task.from_yaml_str(text)
    assert Task.from_yaml_config(t.to_yaml_config()) == t
    again = Task.from_yaml_str(t.to_yaml())
    assert again == t and again.to_yaml() == t.to_yaml()


def test_to_yaml_factors_common_fields_and_uses_blocks():
    t = Task.from_yaml_str(
        "resources:\n  accelerators: A100:8\n  any_of: [{use_spot: true}, {use_spot: false}]\n"
        "run: |\n  a\n  b\n"
    )
    config = t.to_yaml_config()
    assert config["resources"] == {"accelerators": {"A100": 8},
                                   "any_of": [{"use_spot": True}, {}]}  # fmt: skip
    assert "run: |\n  a\n  b\n" in t.to_yaml()


# ---- pipelines -------------------------------------------------------------------------------


PIPELINE = "name: pipe\n---\nname: a\nrun: echo a\n---\nname: b\nenvs: {X: null}\nrun: echo b\n"


def test_pipeline(tmp_path):
    path = write(tmp_path, PIPELINE)
    pipe = load_pipeline(path, env_overrides={"X": "1"})
    assert pipe.name == "pipe" and [t.name for t in pipe.tasks] == ["a", "b"]
    assert pipe.tasks[1].envs == {"X": "1"}
    assert load_tasks(path)[1].missing_envs() == ["X"]


def test_from_yaml_refuses_a_pipeline(tmp_path):
    with pytest.raises(TaskValidationError, match="3 YAML documents.*load_tasks"):
        Task.from_yaml(write(tmp_path, PIPELINE))


def test_single_document_through_load_tasks(tmp_path):
    path = write(tmp_path, "name: only\nrun: x\n---\n")
    assert [t.name for t in load_tasks(path)] == ["only"]
    assert load_pipeline(path).name == "only"
    assert Task.from_yaml(path).name == "only"


def test_pipeline_lines_are_file_lines(tmp_path):
    path = write(tmp_path, "name: p\n---\nrun: a\n---\nrun: b\nresources:\n  cpu: 2\n")
    with pytest.raises(TaskValidationError, match=r":7: resources.cpu: .*Did you mean 'cpus'"):
        load_tasks(path)


# ---- speed -----------------------------------------------------------------------------------


def test_parsing_is_fast():
    big = ENVS + "resources:\n  accelerators: {A100: 8, H100: 8, L4: 1, T4: 1}\n"
    start = time.perf_counter()
    for _ in range(200):
        Task.from_yaml_str(big)
    per_task_ms = (time.perf_counter() - start) / 200 * 1000
    assert per_task_ms < 5, per_task_ms


# ---- hostile input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["service: &a\n  x: *a\n", "file_mounts:\n  /x: &a\n    name: b\n    config: [*a]\n"]
)
def test_recursive_alias_is_a_clear_error(text):
    with pytest.raises(TaskValidationError, match="recursive YAML alias"):
        Task.from_yaml_str(text)


def test_long_values_are_cut_in_messages():
    text = "name: {" + ", ".join(f"k{i}: {i}" for i in range(500)) + "}\n"
    with pytest.raises(TaskValidationError) as info:
        Task.from_yaml_str(text)
    assert len(str(info.value)) < 400 and str(info.value).endswith("...}")
