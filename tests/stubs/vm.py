"""A loopback sshd playing one cloud VM for end-to-end launches (see tests/sshd.py).

The VM trusts this broker's own SSH key (the one the provisioners push to clouds), and when
it stops, every process started from its node root dies with it, as on a terminated VM.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
import sshd


def kill_processes_under(root: str) -> None:
    """Kill every process whose command line holds `root` (a unique tmp path of the test)."""
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if root in cmd:
            with contextlib.suppress(OSError):
                os.kill(int(p.name), signal.SIGKILL)


@pytest.fixture
def vm(tmp_path_factory, sky_home):
    """One sshd 'VM' (`vm.nodes[0].port`, `vm.root` for `<cloud>.node_root`)."""
    if not sshd.have_sshd():
        pytest.skip("needs openssh-server (.ci/run installs it)")
    from skybroker.clouds import clients

    c = sshd.Cluster.start(tmp_path_factory.mktemp("vm"), 1)
    _, public = clients.ssh_identity()
    (c.client_key.parent / "client_key.pub").write_text(public + "\n")  # re-read per login
    c.root = str(c.dir / "vmroot")
    yield c
    c.stop()
    kill_processes_under(c.root)
