"""Resources: parsing of every messy accelerator/cpus/memory/ports/... spelling, the
alternatives expansion, and the queries the optimizer relies on."""

from __future__ import annotations

import pytest

from skybroker.task import Resources, Task, TaskValidationError


def alternatives(resources_yaml: str) -> Task:
    text = "resources:\n" + "".join(f"  {line}\n" for line in resources_yaml.splitlines())
    return Task.from_yaml_str(text, source="task.yaml")


def accs(task: Task) -> list[tuple[str, float] | None]:
    return [r.accelerator() for r in task.resources]


# ---- accelerators ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("accelerators: A100:8", [("A100", 8)]),
        ("accelerators: V100", [("V100", 1)]),
        ("accelerators: K80:0.5", [("K80", 0.5)]),
        ("accelerators: {A100: 8}", [("A100", 8)]),
        ("accelerators: {V100: null}", [("V100", 1)]),
        ("accelerators: {A100:1}", [("A100", 1)]),
        ("accelerators: {A100:1, T4:1}", [("A100", 1), ("T4", 1)]),
        ("accelerators: {A100: 8, H100: 8}", [("A100", 8), ("H100", 8)]),
        ("accelerators: [V100, T4:2]", [("V100", 1), ("T4", 2)]),
        ("accelerators: [{T4: 1}, {L4: 2}]", [("T4", 1), ("L4", 2)]),
        ("accelerators: '{A100:8, H100:8}'", [("A100", 8), ("H100", 8)]),
        ("accelerators: {tpu-v2-8: 1}", [("tpu-v2-8", 1)]),
        ("accelerators: {A100: '2'}", [("A100", 2)]),
    ],
)
def test_accelerator_spellings(spec, expected):
    assert accs(alternatives(spec)) == expected


def test_accelerator_set_is_unordered_list_is_ordered():
    assert alternatives("accelerators: {A100: 8, H100: 8}").resources_ordered is False
    assert alternatives("accelerators: [A100:8, H100:8]").resources_ordered is True
    assert alternatives("accelerators: [A100:8]").resources_ordered is False


def test_accelerator_name_is_kept_as_written():
    assert accs(alternatives("accelerators: a100:2")) == [("a100", 2)]


def test_duplicate_alternatives_collapse():
    assert accs(alternatives("accelerators: [A100:1, A100:1, T4]")) == [("A100", 1), ("T4", 1)]


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("accelerators: {A100: x}", "count must be a positive number, got 'x'"),
        ("accelerators: A100:-1", "count must be a positive number"),
        ("accelerators: A100:1:2", "expected 'NAME' or 'NAME:COUNT'"),
        ("accelerators: {A100: true}", "count must be a positive number, got True"),
        ("accelerators: []", "empty list"),
        ("accelerators: {}", "empty mapping"),
        ("accelerators: [{A100: 1, T4: 1}]", "each list item names one accelerator"),
        ("accelerators: [[A100]]", "expected 'NAME' or 'NAME:COUNT'"),
        ("accelerators: 'A 100'", "invalid accelerator name"),
    ],
)
def test_accelerator_errors(spec, fragment):
    with pytest.raises(TaskValidationError, match="resources.accelerators") as info:
        alternatives(spec)
    assert fragment in str(info.value)
    assert str(info.value).startswith("task.yaml:2: ")


# ---- cpus / memory / disk / ports / labels ---------------------------------------------------


@pytest.mark.parametrize(
    "spec, cpus",
    [("cpus: 4", ("4", (4.0, False))), ("cpus: 4+", ("4+", (4.0, True))),
     ("cpus: 0.5", ("0.5", (0.5, False))), ("cpus: '8'", ("8", (8.0, False))),
     ("cpus: 2.0+", ("2+", (2.0, True)))],
)  # fmt: skip
def test_cpus(spec, cpus):
    r = alternatives(spec).resources[0]
    assert (r.cpus, r.cpus_requirement()) == cpus


@pytest.mark.parametrize(
    "spec, memory",
    [("memory: 32", "32"), ("memory: 32+", "32+"), ("memory: 32GB+", "32+"),
     ("memory: 1TB", "1024"), ("memory: 512MiB", "0.5"), ("memory: 7.5", "7.5")],
)  # fmt: skip
def test_memory(spec, memory):
    r = alternatives(spec).resources[0]
    assert r.memory == memory
    assert r.memory_requirement() == (float(memory.rstrip("+")), memory.endswith("+"))


@pytest.mark.parametrize(
    "spec", ["cpus: 4GB", "cpus: 0", "cpus: four", "memory: 32XB", "memory: .nan", "cpus: [4]"]
)
def test_amount_errors(spec):
    with pytest.raises(TaskValidationError, match=r"task.yaml:2: resources\.(cpus|memory)"):
        alternatives(spec)


def test_unconstrained_requirements_are_none():
    r = Resources()
    assert r.cpus_requirement() is None and r.memory_requirement() is None
    assert r.accelerator() is None and r.use_spot is False


@pytest.mark.parametrize(
    "spec, ports",
    [("ports: 8080", ["8080"]), ("ports: '8080'", ["8080"]),
     ("ports: 8080-8090", ["8080-8090"]), ("ports: [22, '8888-8890', 22]", ["22", "8888-8890"]),
     ("ports: 7000-7000", ["7000"])],
)  # fmt: skip
def test_ports(spec, ports):
    assert alternatives(spec).resources[0].ports == ports


@pytest.mark.parametrize("spec", ["ports: 0", "ports: 8080-", "ports: abc", "ports: [true]"])
def test_port_errors(spec):
    with pytest.raises(TaskValidationError, match="resources.ports"):
        alternatives(spec)


def test_disk_and_labels():
    r = alternatives(
        "disk_size: 1TB\ndisk_tier: HIGH\nlabels: {team: ml, n: 3, spot: True, v: 1.10, x: null}"
    ).resources[0]
    assert (r.disk_size, r.disk_tier) == (1024, "high")
    assert r.labels == {"team": "ml", "n": "3", "spot": "True", "v": "1.10", "x": ""}


# ---- location: cloud / infra --------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, where",
    [("infra: aws", ("aws", None, None)), ("infra: gcp/us-central1", ("gcp", "us-central1", None)),
     ("infra: aws/us-east-1/us-east-1a", ("aws", "us-east-1", "us-east-1a")),
     ("infra: '*/us-east-1'", (None, "us-east-1", None)), ("infra: AWS", ("aws", None, None)),
     ("cloud: Azure\nregion: eastus", ("azure", "eastus", None)),
     ("zone: us-west-2b", (None, None, "us-west-2b"))],
)  # fmt: skip
def test_location(spec, where):
    r = alternatives(spec).resources[0]
    assert (r.cloud, r.region, r.zone) == where


def test_infra_property():
    assert Resources(cloud="aws", zone="us-east-1a").infra == "aws/*/us-east-1a"
    assert Resources().infra is None


def test_unsupported_cloud_warns_and_keeps_the_pin():
    t = alternatives("infra: k8s/my-context")
    assert t.resources[0].cloud == "kubernetes"
    assert t.resources[0].region == "my-context"
    assert "'kubernetes' is not supported" in t.warnings[0]


# ---- alternatives -------------------------------------------------------------------------


def test_any_of_spot_and_on_demand():
    t = alternatives("accelerators: A100:8\nany_of:\n  - use_spot: true\n  - use_spot: false")
    assert [r.use_spot for r in t.resources] == [True, False]
    assert all(r.accelerator() == ("A100", 8) for r in t.resources)
    assert t.resources_ordered is False


def test_any_of_times_accelerator_set_is_the_product():
    t = alternatives("accelerators: {A100: 8, H100: 8}\nany_of: [{use_spot: true}, {}]")
    assert len(t.resources) == 4 and t.resources_ordered is False


def test_any_of_item_overrides_the_surrounding_location():
    t = alternatives(
        "cloud: aws\nregion: us-east-1\nzone: us-east-1a\nany_of:\n"
        "  - region: us-west-2\n  - cloud: gcp\n  - {}"
    )
    got = [(r.cloud, r.region, r.zone) for r in t.resources]
    assert got == [("aws", "us-west-2", None), ("gcp", None, None),
                   ("aws", "us-east-1", "us-east-1a")]  # fmt: skip


def test_ordered_and_resources_list():
    t = alternatives("ordered:\n  - cloud: gcp\n  - cloud: aws")
    assert [r.cloud for r in t.resources] == ["gcp", "aws"] and t.resources_ordered
    t = Task.from_yaml_str("resources:\n  - cloud: azure\n  - infra: aws/us-east-1\n")
    assert [r.cloud for r in t.resources] == ["azure", "aws"] and t.resources_ordered


def test_ordered_with_accelerator_list_flattens():
    t = alternatives("ordered:\n  - accelerators: [A100, T4]\n  - accelerators: L4")
    assert accs(t) == [("A100", 1), ("T4", 1), ("L4", 1)] and t.resources_ordered


def test_legacy_candidates():
    t = alternatives("candidates:\n  - cloud: aws\n  - cloud: gcp")
    assert [r.cloud for r in t.resources] == ["aws", "gcp"]
    assert "'candidates' is deprecated; use 'any_of'" in t.warnings[0]


# ---- job_recovery --------------------------------------------------------------------------


def test_job_recovery_full():
    r = alternatives(
        "job_recovery:\n  strategy: eager-next-region\n  max_restarts_on_errors: 2\n"
        "  deadline: 2d\n  duration: 90m\n  restart_overhead: 0.1"
    ).resources[0]
    assert r.job_recovery == {"strategy": "EAGER_NEXT_REGION", "max_restarts_on_errors": 2,
                              "deadline": 48.0, "duration": 1.5, "restart_overhead": 0.1}  # fmt: skip


@pytest.mark.parametrize("key", ["job_recovery", "spot_recovery"])
def test_job_recovery_bare_string(key):
    r = alternatives(f"{key}: failover").resources[0]
    assert r.job_recovery["strategy"] == "FAILOVER"
    assert r.job_recovery["deadline"] is None and r.job_recovery["max_restarts_on_errors"] == 0


@pytest.mark.parametrize(
    "spec, fragment",
    [("job_recovery: {deadline: -1}", "must be >= 0"),
     ("job_recovery: {deadline: 0}", "must be a positive duration"),
     ("job_recovery: {max_restarts_on_errors: -1}", "whole number >= 0"),
     ("job_recovery: {strategy: 3}", "expected a strategy name"),
     ("job_recovery: [FAILOVER]", "expected a strategy name or a mapping"),
     ("job_recovery: {dedline: 3h}", "Did you mean 'deadline'")],
)  # fmt: skip
def test_job_recovery_errors(spec, fragment):
    with pytest.raises(TaskValidationError, match="resources.job_recovery") as info:
        alternatives(spec)
    assert fragment in str(info.value)


def test_recover_on_exit_codes_warns():
    t = alternatives("job_recovery: {strategy: FAILOVER, recover_on_exit_codes: [33]}")
    assert "recover_on_exit_codes is not supported" in t.warnings[0]


# ---- the Python API --------------------------------------------------------------------------


def test_python_constructor_normalizes():
    r = Resources(cloud="AWS", cpus=4, memory="16GB+", accelerators="A100:8", ports=8080,
                  job_recovery="failover")  # fmt: skip
    assert (r.cloud, r.cpus, r.memory, r.ports) == ("aws", "4", "16+", ["8080"])
    assert r.accelerator() == ("A100", 8.0)
    assert r.job_recovery["strategy"] == "FAILOVER"
    assert r == Resources.from_yaml_config(r.to_yaml_config())


def test_python_constructor_rejects_sets_and_bad_values():
    with pytest.raises(TaskValidationError, match="holds one accelerator"):
        Resources(accelerators={"A100": 8, "H100": 8})
    with pytest.raises(TaskValidationError, match="resources.cloud: unknown cloud"):
        Resources(cloud="awz")
    with pytest.raises(TaskValidationError, match="resources.use_spot"):
        Resources(use_spot="yes")  # type: ignore[arg-type]


def test_from_yaml_config_refuses_alternatives():
    with pytest.raises(TaskValidationError, match="2 alternatives"):
        Resources.from_yaml_config({"accelerators": {"A100": 1, "T4": 1}})


def test_hashable_and_frozen():
    a, b = Resources(cloud="aws", labels={"x": "1"}), Resources(cloud="aws", labels={"x": "1"})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.cloud = "gcp"  # type: ignore[misc]
    assert a.copy(use_spot=True).use_spot is True


def test_str_is_readable():
    r = Resources(cloud="aws", region="us-east-1", accelerators="A100:8", cpus="8+", use_spot=True)
    assert str(r) == "aws/us-east-1 A100:8 cpus=8+ spot"
