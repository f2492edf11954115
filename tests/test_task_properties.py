"""Property tests: any Resources / Task the API can build survives the YAML round trip."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from skybroker.task import Resources, Task

names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
acc_names = st.sampled_from(["A100", "H100", "T4", "V100", "L4", "K80", "a10g", "tpu-v2-8"])
counts = st.sampled_from([0.25, 0.5, 1, 2, 4, 8, 16])
amounts = st.sampled_from(["0.5", "1", "2", "4+", "7.5", "96", "1024+"])
hours = st.floats(min_value=0.01, max_value=1000, allow_nan=False).map(lambda h: round(h, 6))
ports = st.lists(
    st.one_of(
        st.integers(1, 65535).map(str),
        st.tuples(st.integers(1, 30000), st.integers(0, 100)).map(
            lambda t: f"{t[0]}-{t[0] + t[1]}" if t[1] else str(t[0])
        ),
    ),
    max_size=3,
    unique=True,
)
recovery = st.one_of(
    st.none(),
    st.builds(
        lambda s, r, d, dur, o: {
            "strategy": s,
            "max_restarts_on_errors": r,
            "deadline": d,
            "duration": None if dur is None or d is None else min(dur, d),
            "restart_overhead": o,
        },  # fmt: skip
        st.sampled_from([None, "FAILOVER", "EAGER_NEXT_REGION"]),
        st.integers(0, 5),
        st.one_of(st.none(), hours),
        st.one_of(st.none(), hours),
        st.one_of(st.none(), st.just(0.0), hours),
    ),
)


@st.composite
def resources(draw) -> Resources:
    cloud = draw(st.sampled_from([None, "aws", "gcp", "azure", "local"]))
    image = None
    if cloud is not None:
        image = draw(st.sampled_from([None, "img-1", {"r1": "img-a", "r2": "img-b"}]))
    if image is None:
        image = draw(st.sampled_from([None, "docker:ubuntu:22.04"]))
    region = draw(st.one_of(st.none(), names))
    if isinstance(image, dict) and region is not None:
        region = "r1"
    acc = draw(st.one_of(st.none(), st.tuples(acc_names, counts)))
    return Resources(
        cloud=cloud,
        region=region,
        zone=draw(st.one_of(st.none(), names)),
        instance_type=draw(st.one_of(st.none(), names)),
        accelerators=None if acc is None else {acc[0]: float(acc[1])},
        cpus=draw(st.one_of(st.none(), amounts)),
        memory=draw(st.one_of(st.none(), amounts)),
        use_spot=draw(st.booleans()),
        disk_size=draw(st.one_of(st.none(), st.integers(1, 10000))),
        disk_tier=draw(st.sampled_from([None, "low", "best"])),
        image_id=image,
        ports=draw(ports),
        labels=draw(st.dictionaries(names, names, max_size=2)),
        job_recovery=draw(recovery),
    )


@settings(max_examples=80, deadline=None, database=None)
@given(resources())
def test_resources_round_trip(r: Resources):
    assert Resources.from_yaml_config(r.to_yaml_config()) == r


env_values = st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["${A}", "x${B}y"]))


@settings(max_examples=40, deadline=None, database=None)
@given(
    st.lists(resources(), min_size=1, max_size=4),
    st.booleans(),
    st.dictionaries(st.sampled_from(["A", "B", "C", "PATH"]), env_values, max_size=4),
    st.integers(1, 8),
)
def test_task_round_trip(alternatives, ordered, envs, num_nodes):
    unique = []
    for r in alternatives:
        if r not in unique:
            unique.append(r)
    envs = {k: v for k, v in envs.items() if not (k == "A" and v and "${B}" in v)}
    config = Task(
        num_nodes=num_nodes,
        resources=unique,
        resources_ordered=ordered and len(unique) > 1,
        run="echo ${A}",
    ).to_yaml_config()
    config["envs"] = envs
    task = Task.from_yaml_config(config)
    assert task.resources == unique
    assert Task.from_yaml_config(task.to_yaml_config()) == task
    assert Task.from_yaml_str(task.to_yaml()) == task
    # the jobs layer stores to_yaml_config() as JSON in its database
    assert Task.from_yaml_config(json.loads(json.dumps(task.to_yaml_config()))) == task
