"""sshd nodes in network namespaces, each with its own 10.200.X.Y address on one bridge.

Why: on loopback every node is 127.0.0.1, so SKYPILOT_NODE_IPS says little and a node can only
"vanish" by being killed. Here each node has its own address, and `cut(i)` downs the host end
of its veth: a real partition (packets are dropped, nothing is closed). Everything created is
named after this process (`sb<pid>...`) and deleted in `stop()`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import sshd


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ip", *args]
    subprocess.run(cmd, check=True, capture_output=True)


def available() -> bool:
    if os.geteuid() != 0 or not shutil.which("ip") or not sshd.have_sshd():
        return False
    probe = f"sbp{os.getpid() % 100000}"
    try:
        _ip("link", "add", probe, "type", "bridge")
        _ip("link", "del", probe)
        subprocess.run(["ip", "netns", "add", probe], check=True, capture_output=True)
        subprocess.run(["ip", "netns", "del", probe], check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError):
        return False
    return True


@dataclass
class NetCluster:
    dir: Path
    client_key: Path
    subnet: str
    tag: str
    namespaces: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @classmethod
    def start(cls, dir: Path, n: int) -> NetCluster:
        pid = os.getpid()
        tag = f"sb{pid % 100000}"
        c = cls(dir, sshd.keygen(dir / "client_key"), f"10.200.{20 + pid % 200}", tag)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        try:
            _ip("link", "add", f"{tag}br", "type", "bridge")
            _ip("addr", "add", f"{c.subnet}.1/24", "dev", f"{tag}br")
            _ip("link", "set", f"{tag}br", "up")
            for i in range(n):
                ns, addr = f"{tag}n{i}", f"{c.subnet}.{10 + i}"
                subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
                c.namespaces.append(ns)
                _ip("link", "add", f"{tag}h{i}", "type", "veth", "peer", "name", f"{tag}p{i}")
                _ip("link", "set", f"{tag}p{i}", "netns", ns)
                _ip("link", "set", f"{tag}h{i}", "master", f"{tag}br")
                _ip("link", "set", f"{tag}h{i}", "up")
                _ip("addr", "add", f"{addr}/24", "dev", f"{tag}p{i}", ns=ns)
                _ip("link", "set", f"{tag}p{i}", "up", ns=ns)
                _ip("link", "set", "lo", "up", ns=ns)
                hk = sshd.keygen(dir / f"host_key_{i}")
                cfg = dir / f"sshd_{i}.conf"
                cfg.write_text("\n".join([
                    "Port 22", f"ListenAddress {addr}", f"HostKey {hk}", f"PidFile {dir}/sshd_{i}.pid",
                    f"AuthorizedKeysFile {c.client_key}.pub", "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
                    "PermitRootLogin yes", "Subsystem sftp internal-sftp", "LogLevel ERROR",
                    "SetEnv SHLVL=1", ""]))
                c.procs.append(subprocess.Popen(["ip", "netns", "exec", ns, sshd.SSHD, "-D", "-e", "-f",
                                                 str(cfg)], stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL))
                c.addresses.append(addr)
            for addr in c.addresses:
                _wait_port(addr, 22)
        except BaseException:
            c.stop()
            raise
        return c

    def cut(self, i: int) -> None:
        """Partition node i: its link goes down, its processes keep running, unreachable."""
        _ip("link", "set", f"{self.tag}h{i}", "down")

    def heal(self, i: int) -> None:
        _ip("link", "set", f"{self.tag}h{i}", "up")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for ns in self.namespaces:
            # Processes still inside (jobs of a partitioned node) die with the namespace's users.
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
            for pid in out.split():
                with contextlib.suppress(OSError):
                    os.kill(int(pid), 9)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for i in range(len(self.namespaces)):  # the namespace may outlive `del` for a moment
            subprocess.run(["ip", "link", "del", f"{self.tag}h{i}"], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{self.tag}br"], capture_output=True)

    def pool_config(self, root_dir: str, **extra) -> dict:
        import getpass

        cfg = {"user": getpass.getuser(), "identity_file": str(self.client_key),
               "hosts": list(self.addresses), "root_dir": root_dir}
        cfg.update(extra)
        return cfg


def _wait_port(addr: str, port: int, timeout: float = 10.0) -> None:
    import socket
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((addr, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd at {addr}:{port} did not come up")
