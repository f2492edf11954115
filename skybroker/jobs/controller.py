"""The embedded jobs controller: one local process serving every managed job of a home.

Why a process of its own: managed jobs outlive the CLI that launched them. `sky jobs launch`
starts it when none runs (`ensure_running`); an exclusive `flock` on `<home>/jobs/controller.lock`
guarantees at most one, and `<home>/jobs/controller.pid` says which. It may be killed (-9) at
any time: on start it loads every unfinished job from the DB and resumes it (see `runner`).

Scheduling: a heap of (wall time due, job id). Each job's next wake-up is its next tick (or an
earlier poll between ticks on real clouds); due steps run on a small thread pool, one step per
job at a time, so a slow launch of one job never delays the others' ticks.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

LOCK_FILE, PID_FILE, LOG_FILE = "controller.lock", "controller.pid", "controller.log"
SCAN_S = 0.25  # how often the DB is scanned for new jobs and cancellations
IDLE_EXIT_S = 60.0  # exit after this long with no unfinished job (relaunched on demand)


def jobs_dir() -> Path:
    from skybroker.config import home

    d = home() / "jobs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def controller_pid() -> int | None:
    """The running controller's pid (None when none holds the lock)."""
    import fcntl

    lock = jobs_dir() / LOCK_FILE
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                return int((jobs_dir() / PID_FILE).read_text().strip())
            except (OSError, ValueError):
                return -1
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def ensure_running() -> int:
    """Start the controller unless one runs; returns its pid."""
    pid = controller_pid()
    if pid is not None:
        return pid
    log = open(jobs_dir() / LOG_FILE, "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen([sys.executable, "-m", "skybroker.jobs.controller"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env=dict(os.environ))
    log.close()
    return proc.pid


class Controller:
    """Steps every unfinished job at its due times. `backend` is what touches clusters."""

    def __init__(self, backend: Any = None, workers: int = 8, scan_s: float = SCAN_S,
                 idle_exit_s: float | None = IDLE_EXIT_S) -> None:
        from skybroker.jobs.backend import RealBackend

        self.backend = backend or RealBackend()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self.scan_s = scan_s
        self.idle_exit_s = idle_exit_s
        self.runners: dict[int, Any] = {}
        self.heap: list[tuple[float, int]] = []
        self.busy: set[int] = set()
        self.cv = threading.Condition()
        self.stop = threading.Event()
        self.lags: list[tuple[int, float]] = []  # (tick, decision lag in s), for benchmarks
        self.log_root = jobs_dir() / "logs"

    def _scan(self) -> None:
        from skybroker.jobs import state as S
        from skybroker.jobs.runner import JobRunner
        from skybroker.state import db

        S._ensure()
        marks = ", ".join("?" for _ in S.TERMINAL)
        rows = db.query(f"SELECT id, cancel_requested FROM managed_jobs WHERE status NOT IN ({marks})",
                        S.TERMINAL)
        now = time.time()
        for r in rows:
            jid = int(r["id"])
            if jid not in self.runners:
                try:
                    self.runners[jid] = JobRunner(jid, self.backend, self.log_root)
                except Exception as e:  # noqa: BLE001 (a broken row fails its job only)
                    S.update(jid, status=S.FAILED_CONTROLLER, ended_at=now,
                             failure_reason=f"cannot resume: {e}",
                             event=("jobs.end", f"FAILED_CONTROLLER: cannot resume: {e}", None))
                    continue
                self._schedule(now, jid)
            elif r["cancel_requested"] and not self.runners[jid].cancel_seen:
                self.runners[jid].cancel_seen = True
                self.runners[jid].poke()
                self._schedule(now, jid)

    def _schedule(self, when: float, jid: int) -> None:
        with self.cv:
            heapq.heappush(self.heap, (when, jid))
            self.cv.notify()

    def _run(self, jid: int) -> None:
        runner = self.runners.get(jid)
        nxt = None
        try:
            if runner is not None:
                nxt = runner.step()
                if runner.last_lag is not None:
                    self.lags.append(runner.last_lag)
                    runner.last_lag = None
        finally:
            with self.cv:
                self.busy.discard(jid)
                if nxt is None:
                    self.runners.pop(jid, None)
                else:
                    heapq.heappush(self.heap, (nxt, jid))
                self.cv.notify()

    def serve(self) -> None:
        """Run until stopped (or idle for `idle_exit_s`)."""
        next_scan = 0.0
        idle_since = time.time()
        while not self.stop.is_set():
            now = time.time()
            if now >= next_scan:
                self._scan()
                next_scan = now + self.scan_s
            with self.cv:
                if self.runners or self.busy:
                    idle_since = now
                elif self.idle_exit_s is not None and now - idle_since > self.idle_exit_s:
                    return
                due: list[int] = []
                seen: set[int] = set()
                while self.heap and self.heap[0][0] <= now:
                    _, jid = heapq.heappop(self.heap)
                    if jid in self.busy or jid in seen:
                        continue  # a step is in flight; it reschedules itself
                    seen.add(jid)
                    due.append(jid)
                self.busy.update(due)
                wait = min([next_scan - now] + ([self.heap[0][0] - now] if self.heap else []))
            for jid in due:
                self.pool.submit(self._run, jid)
            if not due:
                with self.cv:
                    self.cv.wait(timeout=max(0.0, min(wait, self.scan_s)))

    def shutdown(self) -> None:
        self.stop.set()
        with self.cv:
            self.cv.notify_all()
        self.pool.shutdown(wait=True)


def main() -> int:
    import fcntl

    lock = open(jobs_dir() / LOCK_FILE, "a+")  # noqa: SIM115 (held for the process's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another controller serves this home
    (jobs_dir() / PID_FILE).write_text(f"{os.getpid()}\n")
    print(f"{time.strftime('%F %T')} controller {os.getpid()} up", flush=True)
    ctl = Controller()
    try:
        ctl.serve()
    finally:
        with contextlib.suppress(OSError):
            (jobs_dir() / PID_FILE).unlink()
        print(f"{time.strftime('%F %T')} controller {os.getpid()} exiting", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
