"""Stopping a run on a signal at a batch boundary.

SIGTERM (what SLURM and Kubernetes send before killing a job), SIGINT (Ctrl-C) and SIGUSR1
(SLURM's ``--signal``) do not end training at once: :class:`StopSignals` records the first one and
the trainer, at the end of the current batch, writes its exact state and raises
:class:`RunStopped`. A second signal raises :class:`RunStopped` at once (``aborted``), wherever the
run is: a state being written is then abandoned and the last complete one stays.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

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
    _previous: dict[int, object] = field(default_factory=dict)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            raise RunStopped(
                signum,
                f"aborted by a second {signal_name(signum)}; the last complete savepoint or "
                "resume state is intact",
            )
        self.received = signum

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Catch :data:`STOP_SIGNALS` in the block (main thread only; elsewhere a no-op), and
        restore the previous handlers after it."""
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
