"""Stopping a run on a signal at a batch boundary.

SIGTERM (what SLURM and Kubernetes send before killing a job), SIGINT (Ctrl-C) and SIGUSR1
(SLURM's ``--signal``) do not end training at once: :class:`StopSignals` records the first one and
the trainer, at the end of the current batch, writes its exact state and raises
:class:`RunStopped`. A second signal (another one, or the same one again after
REPEAT_WINDOW_S) raises :class:`RunStopped` at once, wherever the run is: a state being written is
then abandoned and the last complete one stays.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

REPEAT_WINDOW_S = 1.0
"""A repeat of the first signal within this many seconds is ignored: launchers (srun, mpirun)
may deliver one SIGTERM twice, which must not abort the write of the resume state."""
STOP_SIGNALS = tuple(
    sig for name in ("SIGTERM", "SIGINT", "SIGUSR1") if (sig := getattr(signal, name, None))
)
"""The signals that stop a run at the end of its current batch."""


class RunStopped(Exception):  # noqa: N818 (a run ending on request is not an error)
    """Training ended on a signal; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal_name(self.signum)


def signal_name(signum: int) -> str:
    """'SIGTERM' for 15, and so on."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@dataclass
class StopSignals:
    """The first stop signal received while :meth:`installed`, if any."""

    received: int | None = None
    _received_at: float = 0.0
    _previous: dict[int, object] = field(default_factory=dict)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.received == signum and now - self._received_at < REPEAT_WINDOW_S:
            return
        if self.received is not None:
            raise RunStopped(
                signum,
                f"aborted by a second {signal_name(signum)}; the last complete savepoint or "
                "resume state is intact",
            )
        self.received, self._received_at = signum, now

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Catch :data:`STOP_SIGNALS` in the block (main thread only; elsewhere a no-op), and
        restore the previous handlers after it."""
        self.received = None
        try:
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:
            self._restore()
        try:
            yield self
        finally:
            self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
