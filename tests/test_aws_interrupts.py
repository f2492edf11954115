"""Never leak: Ctrl-C at every step of an AWS launch, then refresh + down leaves nothing.

Each case interrupts one launch (through the failover loop, as `sky launch` runs it) with a
KeyboardInterrupt raised from a botocore event hook before or after one EC2 call, then does
what `sky status --refresh` + `sky down` do: rebuild the cluster from its tags in the region
recorded before the attempt (`before_attempt`), terminate, and verify. Half the cases first
re-launch the interrupted cluster (resume must adopt what the interrupted launch created).
One moto server serves all cases; each case has its own broker id.
"""

from __future__ import annotations

import pytest
from placements import placement

from skybroker.clouds import clients
from skybroker.clouds.aws.provisioner import AWSProvisioner, list_tagged_instances, reconcile
from skybroker.clouds.base import ClusterInfo, ClusterSpec
from skybroker.core import failover as fo

pytest_plugins = ["stubs.aws_fixtures"]

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm2lfSjkeU6DHUp7bXpaV1pz1tuLdsodBGjsBObW0X0 t@sky"

# (when, EC2 operation, which call of it) -> the interrupt point
STEPS = [
    ("before", "DescribeInstances", 1),    # very first look-up
    ("before", "ImportKeyPair", 1),
    ("after", "CreateSecurityGroup", 1),   # group exists, no rule yet
    ("before", "RunInstances", 1),
    ("after", "RunInstances", 1),          # instances exist, nobody knows their ids
    ("before", "DescribeInstances", 2),    # during the wait for running
    ("after", "DescribeInstances", 2),
    ("before", "CreateTags", 1),           # before node ranks are tagged
    ("after", "CreateTags", 1),            # some ranks tagged
    ("after", "AuthorizeSecurityGroupIngress", 1),
]
VARIANTS = [  # (nodes, spot, ports, relaunch before down)
    (1, False, [], False),
    (1, True, [], True),
    (2, False, ["8888"], True),
    (2, True, [], False),
    (3, True, ["8000-8010"], True),
]


class Interrupt:
    """A botocore hook raising KeyboardInterrupt at the n-th call of one EC2 operation."""

    def __init__(self, when: str, op: str, nth: int) -> None:
        self.when, self.op, self.nth, self.seen, self.fired = when, op, nth, 0, False

    def __call__(self, **kwargs):
        self.seen += 1
        if self.seen == self.nth and not self.fired:
            self.fired = True
            raise KeyboardInterrupt(f"{self.when} {self.op} #{self.nth}")

    @property
    def event(self) -> str:
        return f"{self.when}-call.ec2.{self.op}"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v[0]}n-{'spot' if v[1] else 'od'}{'-relaunch' if v[3] else ''}")
@pytest.mark.parametrize("step", STEPS, ids=lambda s: f"{s[0]}-{s[1]}-{s[2]}")
def test_interrupted_launch_leaves_zero_instances_after_refresh_and_down(aws, step, variant):
    nodes, spot, ports, relaunch = variant
    region = "us-east-1"
    prov = AWSProvisioner(poll_s=0.001, timeout_s=5)
    recorded: dict[str, str] = {}  # what launch.py records in the state DB before the attempt

    def make_spec(p):
        o = p.offer
        return ClusterSpec("intr", "aws", o.region, o.zone, o.instance_type, p.spot, p.num_nodes,
                           ports=list(ports), ssh_public_key=PUBKEY)

    plan = [placement("aws", region, "us-east-1b", "m5.large", spot, nodes)]
    hook = Interrupt(*step)
    ec2 = clients.aws_client("ec2", region)
    ec2.meta.events.register(hook.event, hook)
    try:
        with pytest.raises(KeyboardInterrupt):
            fo.provision_with_failover(plan, make_spec, get_provisioner=lambda c: prov,
                                       before_attempt=lambda p, s: recorded.update({s.cluster_name: s.region}))
    finally:
        ec2.meta.events.unregister(hook.event, hook)
    assert hook.fired and recorded == {"intr": region}

    if relaunch:  # the user runs `sky launch` again: it adopts what exists, no duplicates
        info, _, _ = fo.provision_with_failover(plan, make_spec, get_provisioner=lambda c: prov)
        assert len(info.nodes) == nodes and sorted(n.rank for n in info.nodes) == list(range(nodes))
        assert len(list_tagged_instances([region])) == nodes

    # `sky status --refresh` + `sky down`: rebuild from tags (or, when no instance exists,
    # the recorded shell), terminate, verify; terminate also sweeps the security group.
    for name, reg in recorded.items():
        prov.terminate(reconcile(name, reg) or ClusterInfo(name, "aws", reg, None, "", False))
    assert list_tagged_instances([region]) == []
    groups = ec2.describe_security_groups(Filters=[
        {"Name": "tag:skybroker-id", "Values": [clients.broker_id()]}])["SecurityGroups"]
    assert groups == []
