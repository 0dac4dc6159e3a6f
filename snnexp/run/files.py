"""Every file and folder name of a result folder, defined once (torch-free: the figures and the
command line read runs without loading a network). The layout is described in
:mod:`snnexp.run.results`."""

from __future__ import annotations

import re

CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.csv"
VALIDATION_FILE = "validation.csv"
"""Validation every training.validate_every batches: one row per validation."""
LOG_FILE = "log.txt"
PROGRESS_FILE = "progress.png"
CHECKPOINT_FILE = "checkpoint.pt"
RESUME_FILE = "resume.pt"
"""The exact training state between two batches, newer than the latest savepoint (written on a
stop signal and every training.checkpoint_minutes; removed when a savepoint supersedes it)."""
LOCK_FILE = "run.lock"
"""Held by the process that trains into the folder (host and PID)."""
STAGING_SUFFIXES = (".partial", ".tmp")
"""Names of what is being written (``.<name>.<random>.partial`` folders, ``.tmp`` files)."""
FIGURES_FOLDER = "figures"
CONVERSION_FILE = "conversion.json"
"""What ``snnexp convert`` measured: settings, ANN and SNN accuracy, accuracy by step, spikes
and synaptic operations (a converted run's folder only)."""
SAVEPOINT_NAME = re.compile(r"^epoch_(\d+)$")
"""The name of a savepoint folder, epoch_<N>."""


def savepoint_folder(epoch: int) -> str:
    """The savepoint folder of ``epoch``: epoch_<N> (epoch_0: the untrained network)."""
    return f"epoch_{epoch}"


def outputs_file(split: str) -> str:
    """A savepoint's arrays of one split: outputs_<split>.npz."""
    return f"outputs_{split}.npz"
