"""Reading what training wrote into a result folder (config, history, savepoint outputs)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from snnexp.run.files import (
    CONFIG_FILE,
    HISTORY_FILE,
    SAVEPOINT_NAME,
    VALIDATION_FILE,
    outputs_file,
)

HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")
OUTPUT_KEYS = ("labels", "predictions")
LABEL_OUTPUT_KEYS = ("output_times", "output_scores")
"""Label-layer outputs: spike times (first-spike networks) or read-out scores (time-stepped)."""


def _not_a_result_folder(path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"{path} does not exist: {path.parent} is not a snnexp result folder "
        f"(expected {CONFIG_FILE} and {HISTORY_FILE} written by `snnexp train`)"
    )


def read_config(run_dir: Path) -> dict[str, Any]:
    """Load the resolved ``config.yaml`` of a result folder."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise _not_a_result_folder(path)
    with path.open(encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if not isinstance(config, dict):
        raise ValueError(f"{path} does not hold a mapping of config keys")
    return config


def config_value(config: dict[str, Any], key: str, default: Any = None) -> Any:
    """Look up a dotted key such as ``"dataset.name"``; ``default`` when any part is absent."""
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def _to_float(text: str) -> float:
    return float(text) if text.strip() else math.nan


class HistoryError(ValueError):
    """history.csv or validation.csv exists but cannot be read (empty, truncated, not text)."""


def _read_columns(path: Path, required: Sequence[str]) -> dict[str, list[float]]:
    """One list of floats per column of a CSV file the run wrote (empty cells: NaN); a damaged
    file, or one without the ``required`` columns, raises :class:`HistoryError`."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise ValueError(f"it lacks the column(s) {', '.join(missing)}")
            rows = list(reader)
        return {column: [_to_float(row[column]) for row in rows] for column in header}
    except (ValueError, TypeError, AttributeError, csv.Error) as error:
        raise HistoryError(f"{path} is damaged or empty ({error})") from error


def read_history(path: Path) -> dict[str, np.ndarray]:
    """Read ``history.csv`` into one array per column (``epoch`` int, the rest float).

    Empty cells become NaN (epoch 0 has no training values). A damaged file raises
    :class:`HistoryError`.
    """
    path = Path(path)
    if not path.is_file():
        raise _not_a_result_folder(path)
    return history_arrays(_read_columns(path, HISTORY_COLUMNS))


def read_validation(run_dir: Path) -> dict[str, np.ndarray] | None:
    """``validation.csv`` of a run (training.validate_every) as one float array per column,
    or None when the run has none. A damaged file raises :class:`HistoryError`."""
    path = Path(run_dir) / VALIDATION_FILE
    if not path.is_file():
        return None
    columns = _read_columns(path, ("iteration", "val_loss", "val_accuracy"))
    return {key: np.asarray(values, dtype=np.float64) for key, values in columns.items()}


def history_arrays(columns: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """The history a checkpoint stores (one list per column) in :func:`read_history`'s form."""
    history = {key: np.asarray(values, dtype=np.float64) for key, values in columns.items()}
    history["epoch"] = history["epoch"].astype(np.int64)
    return history


def read_outputs(epoch_dir: Path, split: str) -> dict[str, np.ndarray] | None:
    """Load ``outputs_<split>.npz`` of a savepoint, or ``None`` when that split was not saved."""
    path = Path(epoch_dir) / outputs_file(split)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        outputs = {key: npz[key] for key in npz.files}
    missing = [k for k in OUTPUT_KEYS if k not in outputs]
    if not any(k in outputs for k in LABEL_OUTPUT_KEYS):
        missing.append(" or ".join(LABEL_OUTPUT_KEYS))
    if missing:
        raise ValueError(f"{path} lacks the array(s) {', '.join(missing)}")
    n = len(outputs["labels"])
    key, values = label_outputs(outputs)
    if values.ndim != 2 or values.shape[0] != n or outputs["predictions"].shape != (n,):
        raise ValueError(
            f"{path}: labels {outputs['labels'].shape}, predictions "
            f"{outputs['predictions'].shape} and {key} {values.shape} do not match"
        )
    return outputs


def label_outputs(outputs: dict[str, np.ndarray]) -> tuple[str, np.ndarray]:
    """(key, array) of the label layer's outputs: spike times or read-out scores."""
    key = next(k for k in LABEL_OUTPUT_KEYS if k in outputs)
    return key, outputs[key]


def savepoint_epoch(epoch_dir: Path) -> int | None:
    """The epoch of a savepoint folder named ``epoch_<N>``, ``None`` for other names."""
    match = SAVEPOINT_NAME.match(Path(epoch_dir).name)
    return int(match.group(1)) if match else None


def savepoint_dirs(run_dir: Path) -> dict[int, Path]:
    """The ``epoch_<N>`` folders of a run, {epoch: folder}, in epoch order."""
    found = {}
    for child in Path(run_dir).iterdir():
        epoch = savepoint_epoch(child)
        if epoch is not None and child.is_dir():
            found[epoch] = child
    return dict(sorted(found.items()))
