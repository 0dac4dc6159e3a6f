"""One writer per result folder: ``run.lock`` holds the host and PID of the process training into
it. A second ``train``/``continue`` on the folder is refused with the holder's host and PID; a
lock left by a process that is gone (same host, PID not running) is taken over with a note."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from snnexp.errors import ResultsError
from snnexp.run.files import LOCK_FILE

logger = logging.getLogger(__name__)


def _running(pid: int) -> bool:
    """Whether a process with this PID exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> tuple[str, int] | None:
    """(host, PID) written in a lock file; None if it is unreadable (being written, damaged)."""
    try:
        data = json.loads(path.read_text())
        return str(data["host"]), int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _this_process() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def _create(path: Path) -> bool:
    """Create the lock file with this process as holder; False if it exists."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    host, pid = _this_process()
    try:
        with os.fdopen(handle, "w") as lock:
            json.dump({"host": host, "pid": pid}, lock)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return True


def _is_stale(holder: tuple[str, int]) -> bool:
    """Whether a lock's holder is gone: on this host, and its PID is not running or is this
    process's own (a restarted container reuses the host name and PID 1)."""
    host, pid = _this_process()
    return holder[0] == host and (holder[1] == pid or not _running(holder[1]))


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir/run.lock`` for the block (a folder that cannot be written to raises the
    OSError, which the command line reports in one line)."""
    path = run_dir / LOCK_FILE
    acquired = _create(path)
    if not acquired:
        holder = _holder(path)
        if holder is not None and _is_stale(holder):
            logger.warning(
                "%s was left by process %d, which is no longer running; taking it over",
                path,
                holder[1],
            )
            path.unlink(missing_ok=True)
            acquired = _create(path)
    if not acquired:
        holder = _holder(path)
        who = "another process" if holder is None else f"process {holder[1]} on {holder[0]}"
        raise ResultsError(
            f"{run_dir} is in use: {who} is training into it ({path}). Wait for it to end; if "
            f"it is gone for good (e.g. its node crashed), remove {path} and retry"
        )
    try:
        yield
    finally:
        if _holder(path) == _this_process():
            path.unlink(missing_ok=True)
