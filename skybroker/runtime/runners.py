"""Runners: run a command on one node and copy files to it. Local processes or SSH (paramiko).

Both runners give the same two verbs the rest of the runtime is written against:
`run(cmd, stdin=..., on_output=...) -> returncode` and `sync(src, dst, files)`. Long-lived job
processes are never children of a runner: the cluster agent (see `agent.py`) starts them in
their own sessions, so a CLI that exits or is interrupted leaves them running.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from skybroker.errors import SkyError

OnOutput = Callable[[bytes], None]
FileEntry = tuple  # (absolute path on the node, local path | bytes | None (a directory), mode | None)


class Runner:
    """What a node offers the runtime."""

    python = "python3 -S"  # the agent is stdlib-only; -S skips site-packages at startup
    is_local = False

    def run(self, cmd: str, *, stdin: bytes | None = None, on_output: OnOutput | None = None,
            timeout: float | None = None) -> tuple[int, bytes]:
        raise NotImplementedError

    def sync(self, src: str, dst: str, files: Sequence[str] | None = None) -> None:
        raise NotImplementedError

    def put_text(self, path: str, text: str, mode: int = 0o644) -> None:
        raise NotImplementedError

    def put_files(self, entries: Sequence[FileEntry]) -> None:
        """Write many files at once: (absolute path, local path or bytes, mode or None)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def check(runner: Runner, cmd: str, what: str, **kw: Any) -> bytes:
    rc, out = runner.run(cmd, **kw)
    if rc != 0:
        tail = out.decode(errors="replace").strip().splitlines()[-3:]
        raise SkyError(f"{what} failed on {runner} (exit {rc}): {' | '.join(tail)}")
    return out


class LocalRunner(Runner):
    """A node that is a directory on this machine (the `local` cloud, and the head's own view)."""

    is_local = True

    def __init__(self, label: str = "local") -> None:
        import sys

        self.label = label
        self.python = f"{sys.executable} -S"  # the agent is stdlib-only: skip site (~150 ms)

    def __str__(self) -> str:
        return self.label

    def run(self, cmd: str, *, stdin: bytes | None = None, on_output: OnOutput | None = None,
            timeout: float | None = None) -> tuple[int, bytes]:
        p = subprocess.Popen(["bash", "-c", cmd], stdin=subprocess.PIPE if stdin is not None else
                             subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if stdin is not None:
            p.stdin.write(stdin)
            p.stdin.close()
        chunks = []
        try:
            for line in iter(p.stdout.readline, b""):
                chunks.append(line) if on_output is None else on_output(line)
            return p.wait(timeout), b"".join(chunks)
        finally:
            if p.poll() is None:
                p.kill()

    def sync(self, src: str, dst: str, files: Sequence[str] | None = None) -> None:
        if files is None:  # a single file
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            return
        for rel in files:
            target = Path(dst, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(shutil.SameFileError):
                shutil.copy2(os.path.join(src, rel), target)

    def put_files(self, entries: Sequence[FileEntry]) -> None:
        for dst, src, mode in entries:
            if src is None:
                Path(dst).mkdir(parents=True, exist_ok=True)
                continue
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(src, bytes):
                self.put_text(dst, src.decode(), mode or 0o644)
            else:
                with contextlib.suppress(shutil.SameFileError):
                    shutil.copy2(src, dst)
                if mode is not None:
                    os.chmod(dst, mode)

    def put_text(self, path: str, text: str, mode: int = 0o644) -> None:
        """Atomic (temp file + rename): the agent may be reading the file right now."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}.{threading.get_ident()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)


# ---- SSH ----

_conns: dict[tuple, Any] = {}
_conns_lock = threading.Lock()
_hostkey_lock = threading.Lock()


def _record_policy(known_hosts: str, strict: bool, notify: Callable[[str], None] | None):
    import paramiko

    class RecordFirstContact(paramiko.MissingHostKeyPolicy):
        """First contact with a host of a pool records its key; later contacts must match it."""

        def missing_host_key(self, client, hostname, key):
            if strict:
                raise SkyError(f"Host key of {hostname} is not in {known_hosts} and the pool is "
                               "strict_host_keys: add it there (ssh-keyscan) first.")
            with _hostkey_lock, open(known_hosts, "a") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
            client.get_host_keys().add(hostname, key.get_name(), key)
            if notify:
                notify(f"Recorded host key of {hostname} ({key.get_name()}) in {known_hosts}.")

    return RecordFirstContact()


class SSHRunner(Runner):
    """A node reached over SSH with a key; host keys are verified against the pool's file."""

    def __init__(self, host: str, port: int, user: str, identity_file: str, known_hosts: str,
                 *, strict_host_keys: bool = False, notify: Callable[[str], None] | None = None,
                 connect_timeout: float = 10.0) -> None:
        self.host, self.port, self.user = host, int(port), user
        self.identity_file, self.known_hosts = os.path.expanduser(identity_file), known_hosts
        self.strict, self.notify, self.timeout = strict_host_keys, notify, connect_timeout

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    def client(self):
        """A connected paramiko client, shared per process (connect+auth costs ~70 ms)."""
        key = (self.host, self.port, self.user, self.identity_file, self.known_hosts)
        with _conns_lock:
            c = _conns.get(key)
            if c is not None and c.get_transport() is not None and c.get_transport().is_active():
                return c

        import paramiko

        c = paramiko.SSHClient()
        Path(self.known_hosts).parent.mkdir(parents=True, exist_ok=True)
        Path(self.known_hosts).touch(exist_ok=True)
        c.load_host_keys(self.known_hosts)
        c.set_missing_host_key_policy(_record_policy(self.known_hosts, self.strict, self.notify))
        try:
            c.connect(self.host, self.port, self.user, key_filename=self.identity_file,
                      timeout=self.timeout, banner_timeout=self.timeout, auth_timeout=self.timeout,
                      allow_agent=False, look_for_keys=False)
        except paramiko.BadHostKeyException:
            raise SkyError(f"Host key of {self} does not match the one recorded in "
                           f"{self.known_hosts}: refusing to connect (possible MITM, or the host "
                           "was reinstalled: remove its line to re-record).") from None
        except paramiko.AuthenticationException:
            raise SkyError(f"Authentication to {self} with key {self.identity_file} failed: "
                           "wrong key or user.") from None
        except (TimeoutError, OSError, paramiko.SSHException) as e:
            if isinstance(e, SkyError):
                raise
            raise SkyError(f"Cannot reach {self}: {e or type(e).__name__}.") from None
        c.get_transport().set_keepalive(5)
        with _conns_lock:
            _conns[key] = c
        return c

    def run(self, cmd: str, *, stdin: bytes | None = None, on_output: OnOutput | None = None,
            timeout: float | None = None) -> tuple[int, bytes]:
        import paramiko

        try:
            chan = self.client().get_transport().open_session(timeout=timeout)
            if timeout is not None:
                chan.settimeout(timeout)
            chan.set_combine_stderr(True)
            chan.exec_command(cmd)
        except (EOFError, OSError, paramiko.SSHException) as e:
            self._forget()
            raise SkyError(f"Cannot reach {self}: {e or type(e).__name__}.") from None
        try:
            return self._pump(chan, stdin, on_output)
        except TimeoutError:
            self._forget()
            raise SkyError(f"Cannot reach {self}: no answer within {timeout:.0f} s.") from None

    def _forget(self) -> None:
        """Drop a cached connection that stopped answering (a partitioned host keeps it 'open')."""
        key = (self.host, self.port, self.user, self.identity_file, self.known_hosts)
        with _conns_lock:
            c = _conns.pop(key, None)
        if c is not None:
            with contextlib.suppress(Exception):
                c.close()

    def _pump(self, chan: Any, stdin: bytes | None, on_output: OnOutput | None) -> tuple[int, bytes]:
        if stdin is not None:
            chan.sendall(stdin)
        chan.shutdown_write()
        chunks, buf = [], b""
        try:
            while True:
                data = chan.recv(65536)
                if not data:
                    break
                if on_output is None:
                    chunks.append(data)
                    continue
                buf += data
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    on_output(line + b"\n")
            if buf and on_output is not None:
                on_output(buf)
            return chan.recv_exit_status(), b"".join(chunks)
        finally:
            chan.close()

    def ssh_command(self) -> str:
        """The `ssh` invocation (for rsync -e) with the same key and verified host keys."""
        return shlex.join(["ssh", "-i", self.identity_file, "-p", str(self.port), "-o", "BatchMode=yes",
                           "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                           "-o", "LogLevel=ERROR"])

    def sync(self, src: str, dst: str, files: Sequence[str] | None = None) -> None:
        self.client()  # records/verifies the host key before openssh is asked to check it
        if shutil.which("rsync") and files is not None:
            p = subprocess.run(["rsync", "-a", "--files-from=-", "--mkpath", "-e", self.ssh_command(),
                                src.rstrip("/") + "/", f"{self.user}@{self.host}:{dst.rstrip('/')}/"],
                               input="\n".join(files).encode(), capture_output=True)
            if p.returncode == 0:
                return
            if b"mkpath" not in p.stderr:
                raise SkyError(f"rsync to {self} failed: {p.stderr.decode(errors='replace').strip()}")
        self._sftp_sync(src, dst, files)

    def _sftp_sync(self, src: str, dst: str, files: Sequence[str] | None) -> None:
        sftp = self.client().open_sftp()
        try:
            pairs = [(src, dst)] if files is None else [(os.path.join(src, f), f"{dst}/{f}") for f in files]
            made: set[str] = set()
            for local, remote in pairs:
                parent = remote.rsplit("/", 1)[0]
                if parent not in made:
                    check(self, f"mkdir -p {shlex.quote(parent)}", "mkdir")
                    made.add(parent)
                sftp.put(local, remote)
                sftp.chmod(remote, os.stat(local).st_mode & 0o777)
        finally:
            sftp.close()

    def put_files(self, entries: Sequence[FileEntry]) -> None:
        """One exec for all files: a tar stream extracted at / (sshd sessions cost ~60+ ms each)."""
        import io
        import tarfile
        import time

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
            for dst, src, mode in entries:
                if not dst.startswith("/"):
                    raise ValueError(f"remote path must be absolute: {dst}")
                if src is None:
                    info = tarfile.TarInfo(dst.lstrip("/"))
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                    tar.addfile(info)
                elif isinstance(src, bytes):
                    info = tarfile.TarInfo(dst.lstrip("/"))
                    info.size, info.mode, info.mtime = len(src), mode or 0o644, int(time.time())
                    tar.addfile(info, io.BytesIO(src))
                else:
                    info = tar.gettarinfo(src, dst.lstrip("/"))
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    if mode is not None:
                        info.mode = mode
                    if info.isreg():
                        with open(src, "rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
        check(self, "tar -xzf - -C / --no-same-owner 2>&1", "uploading files", stdin=buf.getvalue())

    def put_text(self, path: str, text: str, mode: int = 0o644) -> None:
        q = shlex.quote(path)
        check(self, f"mkdir -p $(dirname {q}) && umask 077 && cat > {q} && chmod {mode:o} {q}",
              f"writing {path}", stdin=text.encode())


def close_all() -> None:
    with _conns_lock:
        for c in _conns.values():
            with contextlib.suppress(Exception):
                c.close()
        _conns.clear()
