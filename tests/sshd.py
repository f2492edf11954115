"""Real sshd nodes on loopback for tests: each with its own port, host key and pid file.

Started with `/usr/sbin/sshd -D -e -f CONFIG` (needs openssh-server; .ci/run installs it),
accepting one test client key; stopped by the PIDs we kept. `kill_tree` emulates a machine
vanishing: the listener and every session process under it die at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def have_sshd() -> bool:
    return os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None and shutil.which("ssh") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@dataclass
class Node:
    port: int
    config: Path
    host_key: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd on {self.port} exited with {self.proc.returncode}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError(f"sshd on {self.port} did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill_tree(self) -> None:
        """The node disappears: its sshd and all session processes under it are killed."""
        if not self.proc:
            return
        for pid in [self.proc.pid, *descendants(self.proc.pid)]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(p))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@dataclass
class Cluster:
    """n sshd nodes sharing one client key."""

    dir: Path
    client_key: Path
    nodes: list[Node] = field(default_factory=list)

    @classmethod
    def start(cls, dir: Path, n: int) -> Cluster:
        dir.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        c = cls(dir, keygen(dir / "client_key"))
        for i in range(n):
            port = free_port()
            hk = keygen(dir / f"host_key_{i}")
            cfg = dir / f"sshd_{i}.conf"
            cfg.write_text("\n".join([
                f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {hk}",
                f"PidFile {dir}/sshd_{i}.pid", f"AuthorizedKeysFile {c.client_key}.pub",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
                "StrictModes no", "PermitRootLogin yes", "Subsystem sftp internal-sftp",
                "MaxStartups 200", "MaxSessions 200", "LogLevel ERROR",
                # Test hosts are clean machines: bash run by sshd with SHLVL=1 skips the
                # developer's ~/.bashrc (pyenv init there costs ~0.7 s per session here).
                "SetEnv SHLVL=1", ""]))
            c.nodes.append(Node(port, cfg, hk))
        try:
            for node in c.nodes:
                node.start()
        except BaseException:
            c.stop()
            raise
        return c

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def pool_config(self, name: str = "lab", root_dir: str | None = None, **extra) -> dict:
        import getpass

        cfg = {"user": getpass.getuser(), "identity_file": str(self.client_key),
               "hosts": [f"127.0.0.1:{n.port}" for n in self.nodes],
               "root_dir": root_dir or str(self.dir / "nodes")}
        cfg.update(extra)
        return {name: cfg}
