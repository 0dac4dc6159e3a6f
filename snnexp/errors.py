"""Errors with complete, user-facing messages (the CLI prints them without a traceback)."""

import errno

DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
"""The errno values of a full disk or an exhausted quota."""


class SnnexpError(Exception):
    """Base class: the message names the problem and the fix."""


class ResultsError(SnnexpError):
    """A result folder or savepoint is missing, incomplete or corrupted."""


class TrainingError(SnnexpError):
    """Training cannot go on (e.g. the loss became NaN)."""


class DivergenceError(TrainingError):
    """Training diverged: the loss or a weight is no longer finite."""


class DataError(SnnexpError):
    """Dataset files are missing, damaged or cannot be fetched."""
