"""Running a sweep's runs as separate processes: a local pool of ``--jobs`` workers, or Ray tasks
(local Ray, or a cluster with ``--address``). No scheduler of our own: the pool is
``concurrent.futures``, the cluster is Ray's.

Each run is one ``python -m snnexp train|continue ...`` process, its console output appended to a
log file. Stopping the sweep (SIGTERM, SIGINT, SIGUSR1) forwards one SIGTERM to every running
run, which then writes its resume state and exits; on Linux a run also gets SIGTERM when the
process that started it dies (a killed sweep leaves no orphan training on).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnexp.errors import SnnexpError
from snnexp.run.stopping import STOP_SIGNALS, signal_name

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Job:
    """One process of a sweep: ``snnexp`` arguments, where its console output goes."""

    name: str
    arguments: tuple[str, ...]
    log: Path
    cwd: Path


def run_job(job: Job) -> dict[str, Any]:
    """Run ``python -m snnexp <arguments>`` to its end (in the sweep's working folder where
    this machine has it); returns the attempt's record: command, exit code, seconds and peak
    resident memory (MB) of the process."""
    command = [sys.executable, "-m", "snnexp", *job.arguments]
    started = time.time()
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with job.log.open("a", encoding="utf-8") as log:
        log.write(f"\n$ snnexp {' '.join(job.arguments)}\n")
        log.flush()
        process = subprocess.Popen(
            command,
            cwd=job.cwd if job.cwd.is_dir() else None,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_terminate_with_parent if sys.platform == "linux" else None,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        _RUNNING.add(process)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            _RUNNING.discard(process)
        process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "command": f"snnexp {' '.join(job.arguments)}",
        "exit_code": process.returncode,
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "seconds": round(time.time() - started, 3),
        "peak_memory_mb": round(usage.ru_maxrss / 1024.0, 1),
        "host": os.uname().nodename,
    }


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM when the thread that started it ends (Linux)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Processes:
    """The runs this process started and that are still running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen] = set()

    def add(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._processes.add(process)

    def discard(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._processes.discard(process)

    def terminate(self) -> None:
        with self._lock:
            for process in self._processes:
                try:
                    process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass


_RUNNING = _Processes()


class SweepStopped(SnnexpError):
    """The sweep was stopped by a signal; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


@contextmanager
def forwarding_stop_signals(stopped: list[int]) -> Iterator[None]:
    """While inside: a stop signal is recorded in ``stopped`` and passed on once, as SIGTERM,
    to every running run (which saves its state and exits)."""

    def handle(signum: int, _frame: Any) -> None:
        if not stopped:
            stopped.append(signum)
            logger.warning(
                "%s: stopping the running runs at their next batch (they save their state)",
                signal_name(signum),
            )
            _RUNNING.terminate()

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


Done = Callable[[Job, dict[str, Any]], None]


def run_local(jobs: Sequence[Job], workers: int, done: Done, stopped: list[int]) -> None:
    """Run ``jobs`` on a pool of ``workers`` processes at a time; ``done`` gets each attempt as
    it ends. After a stop signal no further job starts."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending = {pool.submit(_unless_stopped, job, stopped): job for job in jobs}
        for future in concurrent.futures.as_completed(pending):
            attempt = future.result()
            if attempt is not None:
                done(pending[future], attempt)


def _unless_stopped(job: Job, stopped: list[int]) -> dict[str, Any] | None:
    return None if stopped else run_job(job)


def run_ray(
    jobs: Sequence[Job],
    workers: int,
    threads: int,
    address: str | None,
    done: Done,
    stopped: list[int],
) -> None:
    """Run ``jobs`` as Ray tasks of ``threads`` CPUs each: on a local Ray of ``workers`` x
    ``threads`` CPUs, or on the cluster at ``address`` ('auto': the one this machine joined)."""
    try:
        import ray
    except ImportError as error:
        raise SnnexpError(
            "--executor ray needs Ray: pip install 'snnexp[sweep]' (or pip install ray)"
        ) from error
    if address is None:
        ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=threads, max_retries=0)(run_job)
        pending = {task.remote(job): job for job in jobs}
        while pending:
            if stopped:
                for reference in pending:
                    ray.cancel(reference, force=True)
                return
            finished, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for reference in finished:
                done(pending.pop(reference), ray.get(reference))
    finally:
        ray.shutdown()
