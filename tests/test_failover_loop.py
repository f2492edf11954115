"""The failover loop against a tiny fake cloud (a test double of a cloud, not of our code)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from placements import placement

from skybroker import errors
from skybroker.clouds.base import ClusterInfo, ClusterSpec, NodeInfo
from skybroker.core import failover as fo


@dataclass
class Plan:
    placements: list


class FakeCloud:
    """Fails launches per (region, zone, instance_type, spot) with the configured error."""

    def __init__(self, cloud: str, faults: dict | None = None) -> None:
        self.cloud = cloud
        self.faults = dict(faults or {})
        self.launched: list[ClusterSpec] = []
        self.calls: list[tuple] = []
        self.terminated: list[str] = []

    def launch(self, spec: ClusterSpec) -> ClusterInfo:
        key = (spec.region, spec.zone, spec.instance_type, spec.spot)
        self.calls.append(key)
        for k in (key, (spec.region, spec.zone, spec.instance_type, None), (spec.region, None, None, None)):
            if k in self.faults:
                raise self.faults[k]
        self.launched.append(spec)
        return ClusterInfo(spec.cluster_name, self.cloud, spec.region, spec.zone,
                           spec.instance_type, spec.spot, [NodeInfo("i-1", 0, "RUNNING")])

    def terminate(self, cluster: ClusterInfo) -> None:
        self.terminated.append(cluster.cluster_name)


def P(cloud, region, zone, itype="m5.large", spot=True):
    return placement(cloud, region, zone, itype, spot)


def make_spec(p):
    o = p.offer
    return ClusterSpec("c1", o.cloud, o.region, o.zone, o.instance_type, p.spot, p.num_nodes)


def run(plan, clouds, **kw):
    return fo.provision_with_failover(Plan(plan), make_spec, get_provisioner=lambda c: clouds[c], **kw)


def test_first_placement_with_capacity_wins_in_plan_order_across_zones_regions_clouds():
    cap = lambda: errors.CapacityError("InsufficientInstanceCapacity", scope="zone")  # noqa: E731
    aws = FakeCloud("aws", {
        ("us-east-1", "us-east-1a", "p5", True): cap(),
        ("us-east-1", "us-east-1b", "p5", True): cap(),
        ("us-east-1", "us-east-1c", "p5", True): cap(),
        ("us-west-2", None, None, None): errors.QuotaError("VcpuLimitExceeded"),
    })
    gcp = FakeCloud("gcp", {("us-central1", "us-central1-a", "a3", True): cap()})
    plan = [P("aws", "us-east-1", z, "p5") for z in ("us-east-1a", "us-east-1b", "us-east-1c")]
    plan += [P("aws", "us-west-2", "us-west-2a", "p5"), P("aws", "us-west-2", "us-west-2b", "p5")]
    plan += [P("gcp", "us-central1", "us-central1-a", "a3"), P("gcp", "us-central1", "us-central1-b", "a3")]
    seen = []
    info, placement, attempts = run(plan, {"aws": aws, "gcp": gcp}, on_attempt=seen.append)
    assert placement is plan[-1] and info.cloud == "gcp" and info.zone == "us-central1-b"
    assert [a.outcome for a in attempts] == ["CAPACITY"] * 3 + ["QUOTA", "CAPACITY", "UP"]
    assert [a.outcome for a in seen] == ["CAPACITY"] * 3 + ["QUOTA", "CAPACITY", "UP"]
    # The quota error blocked the region: us-west-2b was never called.
    assert ("us-west-2", "us-west-2b", "p5", True) not in aws.calls
    assert gcp.launched[0].broker_id  # filled from the persisted broker id


def test_spot_stockout_does_not_block_on_demand_of_same_type():
    aws = FakeCloud("aws", {("r", "r-a", "g5", True): errors.CapacityError("no spot", "zone")})
    plan = [P("aws", "r", "r-a", "g5", spot=True), P("aws", "r", "r-a", "g5", spot=False)]
    info, placement, attempts = run(plan, {"aws": aws})
    assert placement.spot is False and [a.outcome for a in attempts] == ["CAPACITY", "UP"]


def test_zone_stockout_of_one_type_keeps_other_types_in_that_zone():
    aws = FakeCloud("aws", {("r", "r-a", "p5", True): errors.CapacityError("x", "zone")})
    plan = [P("aws", "r", "r-a", "p5"), P("aws", "r", "r-a", "g5")]
    _, placement, _ = run(plan, {"aws": aws})
    assert placement.offer.instance_type == "g5"


def test_region_scope_blocks_type_in_all_zones_of_region():
    aws = FakeCloud("aws", {("r", "r-a", "p5", True): errors.CapacityError("x", "region")})
    plan = [P("aws", "r", "r-a", "p5"), P("aws", "r", "r-b", "p5"), P("aws", "s", "s-a", "p5")]
    _, placement, attempts = run(plan, {"aws": aws})
    assert placement.offer.region == "s"
    assert [a.outcome for a in attempts] == ["CAPACITY", "UP"]


def test_credentials_block_the_whole_cloud_and_invalid_blocks_type():
    aws = FakeCloud("aws", {("r", None, None, None): errors.CredentialsError("AuthFailure")})
    gcp = FakeCloud("gcp", {("g", "g-a", "bad", None): errors.InvalidRequestError("bad type")})
    plan = [P("aws", "r", "r-a"), P("aws", "s", "s-a"), P("gcp", "g", "g-a", "bad"),
            P("gcp", "g", "g-b", "bad", spot=False), P("gcp", "g", "g-b", "good")]
    _, placement, attempts = run(plan, {"aws": aws, "gcp": gcp})
    assert placement.offer.instance_type == "good"
    assert [a.outcome for a in attempts] == ["CREDENTIALS", "INVALID", "UP"]
    assert aws.terminated == []  # no cleanup call into a cloud whose credentials failed
    assert gcp.terminated == ["c1"]  # failed attempt cleaned up by tag


def test_total_failure_raises_with_attempts_table():
    aws = FakeCloud("aws", {("r", None, None, None): errors.CapacityError("InsufficientInstanceCapacity", "zone")})
    plan = [P("aws", "r", "r-a"), P("aws", "r", "r-b")]
    with pytest.raises(errors.ResourcesUnavailableError) as ei:
        run(plan, {"aws": aws})
    msg = str(ei.value)
    assert "CLOUD" in msg and "OUTCOME" in msg and msg.count("InsufficientInstanceCapacity") == 2
    assert "r-a" in msg and "r-b" in msg


def test_missing_sdk_blocks_the_cloud_not_the_launch():
    def get(cloud):
        if cloud == "azure":
            raise errors.NotSupportedError("The AZURE SDK is not installed", hint="pip install 'skybroker[azure]'")
        return FakeCloud(cloud)

    plan = [P("azure", "eastus", "1"), P("azure", "westus", "1"), P("aws", "r", "r-a")]
    _, placement, attempts = fo.provision_with_failover(Plan(plan), make_spec, get_provisioner=get)
    assert placement.offer.cloud == "aws"
    assert [a.outcome for a in attempts] == ["UNSUPPORTED", "UP"]
    assert "skybroker[azure]" in attempts[0].error


def test_table_counts_skipped_placements():
    aws = FakeCloud("aws", {("r", None, None, None): errors.CredentialsError("AuthFailure")})
    plan = [P("aws", "r", f"r-{i}") for i in range(50)]
    with pytest.raises(errors.ResourcesUnavailableError, match="49 more placement"):
        run(plan, {"aws": aws})


def test_failed_offers_are_tried_last_on_the_next_launch_then_expire(monkeypatch):
    cap = errors.CapacityError("stockout", "zone")
    aws = FakeCloud("aws", {("r", "r-a", "p5", True): cap})
    plan = [P("aws", "r", "r-a", "p5"), P("aws", "r", "r-b", "p5")]
    run(plan, {"aws": aws})
    aws2 = FakeCloud("aws")
    _, placement, attempts = run(plan, {"aws": aws2})
    assert placement.offer.zone == "r-b" and len(attempts) == 1  # r-a is now last
    # After expiry the plan order is back.
    import time as _time

    real = _time.time
    monkeypatch.setattr(fo.time, "time", lambda: real() + fo.DEFAULT_REMEMBER_S + 1)
    _, placement, _ = run(plan, {"aws": FakeCloud("aws")})
    assert placement.offer.zone == "r-a"


def test_success_forgets_the_remembered_block():
    fo.remember([fo.Block("aws", "r", "r-a", "p5", True, "old")])
    _, placement, _ = run([P("aws", "r", "r-a", "p5")], {"aws": FakeCloud("aws")})
    assert fo.load_memory() == []


def test_corrupt_memory_file_is_ignored(sky_home):
    (sky_home / fo.MEMORY_FILE).write_text("{not json")
    _, placement, _ = run([P("aws", "r", "r-a")], {"aws": FakeCloud("aws")})
    assert placement.offer.zone == "r-a"


def test_retry_until_up_loops_with_backoff_until_capacity_returns():
    class Flaky(FakeCloud):
        def launch(self, spec):
            if len(self.calls) < 5:
                self.calls.append(spec.zone)
                raise errors.CapacityError("stockout", "zone")
            return super().launch(spec)

    sleeps = []
    aws = Flaky("aws")
    plan = [P("aws", "r", "r-a"), P("aws", "r", "r-b")]
    _, placement, attempts = run(plan, {"aws": aws}, retry_until_up=True, sleep=sleeps.append,
                                 backoff=fo.Backoff(initial_s=1, max_s=4, jitter=0))
    assert sleeps == [1, 2]  # two failed rounds, exponential
    assert attempts[-1].outcome == "UP" and attempts[-1].round == 3


def test_retry_until_up_gives_up_when_only_permanent_blocks_remain():
    aws = FakeCloud("aws", {("r", None, None, None): errors.CredentialsError("no creds")})
    with pytest.raises(errors.ResourcesUnavailableError):
        run([P("aws", "r", "r-a")], {"aws": aws}, retry_until_up=True, sleep=lambda s: None)


def test_keyboard_interrupt_propagates_and_before_attempt_sees_spec():
    class Boom(FakeCloud):
        def launch(self, spec):
            raise KeyboardInterrupt

    seen = []
    with pytest.raises(KeyboardInterrupt):
        run([P("aws", "r", "r-a")], {"aws": Boom("aws")}, before_attempt=lambda p, s: seen.append(s))
    assert seen and seen[0].broker_id


def test_empty_plan_is_a_clear_error():
    with pytest.raises(errors.ResourcesUnavailableError, match="no feasible"):
        run([], {})


def test_backoff_is_capped():
    b = fo.Backoff(initial_s=10, max_s=25, jitter=0)
    assert [b.next_delay() for _ in range(4)] == [10, 20, 25, 25]


class ColumnarPlan:
    """The shape of skybroker.optimizer.Plan: table columns + spot, placements built on access."""

    def __init__(self, rows):
        from types import SimpleNamespace

        import numpy as np

        self._rows = rows
        self.table = SimpleNamespace(**{k: np.array([getattr(r.offer, k) or "" for r in rows])
                                        for k in ("cloud", "region", "zone", "instance_type")})
        self.spot = np.array([r.spot for r in rows])
        self.built = 0

    @property
    def placements(self):
        plan = self

        class Lazy:
            def __len__(self):
                return len(plan._rows)

            def __getitem__(self, i):
                plan.built += 1
                return plan._rows[i]

        return Lazy()


def test_columnar_plan_skips_a_blocked_cloud_without_building_its_placements():
    rows = [P("aws", f"r{i % 7}", f"r{i % 7}-{i % 3}", f"t{i % 11}") for i in range(60_000)]
    rows += [P("gcp", "g", "g-a", "n1"), P("gcp", "g", "g-b", "n1")]
    plan = ColumnarPlan(rows)
    aws = FakeCloud("aws", {(f"r{r}", None, None, None): errors.CredentialsError("AuthFailure") for r in range(7)})
    gcp = FakeCloud("gcp", {("g", "g-a", "n1", True): errors.CapacityError("stockout", "zone")})
    import time as _t

    t0 = _t.perf_counter()
    _, placement, attempts = fo.provision_with_failover(plan, make_spec, get_provisioner={"aws": aws, "gcp": gcp}.get)
    assert _t.perf_counter() - t0 < 2.0
    assert placement.offer.zone == "g-b" and [a.outcome for a in attempts] == ["CREDENTIALS", "CAPACITY", "UP"]
    assert plan.built == 3  # one aws row, two gcp rows: the other 59,999 were dropped by a mask


def test_columnar_memory_order_matches_the_plain_walk():
    rows = [P("aws", "r", z, t, s) for z in ("r-a", "r-b") for t in ("p5", "g5") for s in (True, False)]
    fo.remember([fo.Block("aws", "r", "r-a", "p5", True, "x"), fo.Block("aws", "r", None, "g5", False, "y")])
    order_cols = _tried(ColumnarPlan(rows))
    order_list = _tried(rows)
    assert order_cols == order_list
    assert order_list[-3:] == [rows[0], rows[3], rows[7]]  # remembered failures last, in plan order


def _tried(plan):
    """Placements in the order the loop tried them (every launch is throttled)."""
    busy = FakeCloud("aws", {("r", None, None, None): errors.ThrottledError("busy")})
    with pytest.raises(errors.ResourcesUnavailableError):
        fo.provision_with_failover(plan, make_spec, get_provisioner=lambda c: busy)
    return [P("aws", r, z, t, s) for r, z, t, s in busy.calls]


def test_broker_id_and_ssh_key_are_one_per_home_under_concurrency():
    """Threads of one process (concurrent launches via the API) must agree on both."""
    import subprocess
    import threading

    from skybroker.clouds import clients

    ids, keys = [], []
    threads = [threading.Thread(target=lambda: (ids.append(clients.broker_id()),
                                                keys.append(clients.ssh_identity())))
               for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(set(keys)) == 1
    path, public = keys[0]
    derived = subprocess.run(["ssh-keygen", "-y", "-f", path], capture_output=True, text=True)
    if derived.returncode == 0:  # openssh-client present: the halves belong together
        assert derived.stdout.split()[:2] == public.split()[:2]
