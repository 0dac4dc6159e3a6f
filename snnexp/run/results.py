"""Result folders and savepoints: creation, atomic writes, discovery and loading.

Layout (one folder per training run)::

    <results root>/<config name>_<YYYY-MM-DD_HH-MM-SS>/
      config.yaml          fully resolved config + snnexp version
      history.csv          one row per epoch
      validation.csv       validation every training.validate_every batches (when set)
      log.txt              what the run printed, ending with why the run ended
      resume.pt            the exact state between two batches, when newer than every savepoint
      run.lock             while a process trains into the folder
      epoch_<N>/           one per savepoint (epoch_0 = untrained)
        checkpoint.pt      plain tensors and numbers: torch.load(..., weights_only=True)
        outputs_<split>.npz
        figures/           written by `snnexp eval`

Every file is written under a temporary name and renamed into place, and a savepoint folder is
assembled under a temporary name before it appears as ``epoch_<N>``, so an interrupted run never
leaves a half savepoint. A savepoint that would be overwritten (continuing from an earlier one)
is renamed ``epoch_<N>.replaced-<timestamp>`` instead of deleted. What a killed process left
half-written (``.partial`` folders, ``.tmp`` files) is removed when the next one starts
(:func:`remove_staging`).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnexp.choices import SPLITS
from snnexp.errors import DISK_FULL, ResultsError
from snnexp.run.files import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    CONVERSION_FILE,
    FIGURES_FOLDER,
    HISTORY_FILE,
    LOG_FILE,
    PROGRESS_FILE,
    RESUME_FILE,
    SAVEPOINT_NAME,
    STAGING_SUFFIXES,
    VALIDATION_FILE,
    outputs_file,
    savepoint_folder,
)

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "seconds",
    "bumps",
    "connections",
    "rewirings",
)
VALIDATION_COLUMNS = ("iteration", "epoch", "val_loss", "val_accuracy", "lr", "seconds")
"""Columns of validation.csv: the optimizer steps so far, the epoch they are in (1-based), the
validation loss and accuracy, the learning rate and the seconds since training started."""
HIDDEN_PREFIX = "hidden_"
"""Saved outputs of the hidden layers: hidden_times_<k> (first-spike), hidden_counts_<k> (BPTT)."""


def make_run_dir(results_root: Path, name: str, exact: Path | None = None) -> Path:
    """Create and return ``results_root/<name>_<timestamp>`` (suffixed if it already exists),
    or the folder ``exact`` (its parents created; it must not exist yet)."""
    stem = f"{name}_{datetime.now():%Y-%m-%d_%H-%M-%S}"
    if exact is not None:
        results_root, stem = exact.parent, exact.name
        if exact.exists():
            raise ResultsError(
                f"{exact} exists already; give a new folder to --run-dir (or continue that run: "
                f"snnexp continue {exact})"
            )
    try:
        results_root.mkdir(parents=True, exist_ok=True)
        for attempt in range(1000):
            candidate = results_root / (stem if attempt == 0 else f"{stem}_{attempt}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as error:
        raise ResultsError(
            f"cannot create the result folder under {results_root} "
            f"({error.strerror or error}{f': {error.filename}' if error.filename else ''}); "
            "choose a writable folder with --results-dir"
        ) from error
    raise ResultsError(f"could not create a new result folder under {results_root}")


def _umask() -> int:
    """The process's file-creation mask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def staging_dir(parent: Path, prefix: str) -> Path:
    """A new ``.partial`` folder under ``parent`` with the permissions of a folder made by
    mkdir (``tempfile.mkdtemp`` alone makes it 0700, unreadable for collaborators)."""
    folder = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=".partial"))
    folder.chmod(0o777 & ~_umask())
    return folder


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename; the
    file gets the permissions of a plainly created one (0644 with the usual umask, not
    ``mkstemp``'s 0600)."""
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, float]]) -> None:
    """Write ``rows`` as a CSV file of ``columns``, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: row[key] for key in columns})
    atomic_write_text(path, buffer.getvalue())


def write_history(run_dir: Path, rows: Sequence[Mapping[str, float]]) -> None:
    """Write history.csv atomically, one row per epoch, columns :data:`HISTORY_COLUMNS`."""
    _write_csv(run_dir / HISTORY_FILE, HISTORY_COLUMNS, rows)


def write_validation(run_dir: Path, rows: Sequence[Mapping[str, float]]) -> None:
    """Write validation.csv atomically, columns :data:`VALIDATION_COLUMNS`."""
    _write_csv(run_dir / VALIDATION_FILE, VALIDATION_COLUMNS, rows)


def _npz_bytes(arrays: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{key: np.asarray(value) for key, value in arrays.items()})
    return buffer.getvalue()


def save_savepoint(
    run_dir: Path,
    epoch: int,
    checkpoint: Mapping[str, Any],
    outputs: Mapping[str, Mapping[str, Any]],
) -> Path:
    """Write ``epoch_<epoch>/`` (checkpoint.pt + outputs_<split>.npz) atomically; return it.
    A full disk removes the half-written folder and says how much space the savepoint needs."""
    final = run_dir / savepoint_folder(epoch)
    files = {CHECKPOINT_FILE: _checkpoint_bytes(checkpoint)}
    files |= {outputs_file(split): _npz_bytes(arrays) for split, arrays in outputs.items()}
    try:
        staging = staging_dir(run_dir, f".{final.name}.")
        kept = None
        try:
            for name, data in files.items():
                atomic_write_bytes(staging / name, data)
            if final.exists():
                kept = set_aside(final)
                logger.warning(
                    "savepoint %s existed; the old one is kept as %s", final.name, kept.name
                )
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if kept is not None and kept.exists() and not final.exists():
                kept.rename(final)
            raise
    except OSError as error:
        if error.errno not in DISK_FULL:
            raise
        size = sum(len(data) for data in files.values())
        raise ResultsError(
            f"no space left on the device of {run_dir} to write savepoint {final.name} (it needs "
            f"{size / 2**20:.1f} MiB); the half-written savepoint was removed and the earlier "
            f"savepoints are intact. Free some space, then resume with: snnexp continue {run_dir}"
        ) from error
    return final


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.replaced-<time>`` (a savepoint or resume state of an abandoned
    continuation: kept, not deleted); returns the new path."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    kept = path.with_name(f"{path.name}.replaced-{stamp}")
    for attempt in range(1, 1000):
        if not kept.exists():
            break
        kept = path.with_name(f"{path.name}.replaced-{stamp}_{attempt}")
    path.rename(kept)
    return kept


def _checkpoint_bytes(checkpoint: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(dict(checkpoint), buffer)
    return buffer.getvalue()


def save_resume_state(run_dir: Path, checkpoint: Mapping[str, Any]) -> Path:
    """Write ``checkpoint`` (a trainer state with its ``position``) as the run's resume state,
    atomically: an interrupted write leaves the previous one."""
    path = run_dir / RESUME_FILE
    atomic_write_bytes(path, _checkpoint_bytes(checkpoint))
    return path


def clear_resume_state(run_dir: Path) -> None:
    """Remove the resume state (a savepoint written after it supersedes it)."""
    (run_dir / RESUME_FILE).unlink(missing_ok=True)


def remove_staging(run_dir: Path) -> list[str]:
    """Remove what an interrupted process left half-written in the run folder and its
    savepoints (``.*.partial`` folders, ``.*.tmp`` files); returns their names."""
    removed = []
    for folder in (run_dir, *list_savepoints(run_dir).values()):
        for child in folder.iterdir():
            if child.name.startswith(".") and child.name.endswith(STAGING_SUFFIXES):
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
                removed.append(str(child.relative_to(run_dir)))
    return removed


def list_savepoints(run_dir: Path) -> dict[int, Path]:
    """Complete savepoints of a run, {epoch: folder}, in epoch order."""
    found = {}
    if run_dir.is_dir():
        for child in run_dir.iterdir():
            match = SAVEPOINT_NAME.match(child.name)
            if match and (child / CHECKPOINT_FILE).is_file():
                found[int(match.group(1))] = child
    return dict(sorted(found.items()))


def check_run_folder(path: Path) -> None:
    """Refuse a path that is not a result folder written by `snnexp train`."""
    if not path.is_dir():
        raise ResultsError(f"result folder not found: {path}")
    if not (path / CONFIG_FILE).is_file():
        raise ResultsError(
            f"{path} is not a snnexp result folder (no {CONFIG_FILE}); give the folder that "
            "`snnexp train` created under experiment_results/, or one of its epoch_<N> folders"
        )


def resolve_savepoint(path: Path, epoch: int | None = None) -> tuple[Path, Path]:
    """(run folder, savepoint folder) for a run folder (+ epoch, default: latest) or an
    ``epoch_<N>`` folder given directly."""
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"result folder not found: {path}")
    if SAVEPOINT_NAME.match(path.name) and (path / CHECKPOINT_FILE).is_file():
        if epoch is not None and savepoint_folder(epoch) != path.name:
            raise ResultsError(
                f"{path} is the savepoint {path.name}, but --epoch {epoch} asks for another; "
                "give the run folder with --epoch, or the savepoint folder alone"
            )
        return path.parent, path
    check_run_folder(path)
    savepoints = list_savepoints(path)
    if not savepoints:
        raise ResultsError(
            f"{path} has no savepoints (no epoch_<N>/{CHECKPOINT_FILE}); the run probably stopped "
            "before its first savepoint: train again"
        )
    if epoch is None:
        epoch = max(savepoints)
    if epoch not in savepoints:
        raise ResultsError(
            f"{path} has no savepoint for epoch {epoch}; available: "
            f"{', '.join(str(e) for e in savepoints)}"
        )
    return path, savepoints[epoch]


def load_checkpoint(epoch_dir: Path) -> dict[str, Any]:
    """Load a savepoint's ``checkpoint.pt`` (:func:`read_checkpoint`)."""
    return read_checkpoint(epoch_dir / CHECKPOINT_FILE)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint file with ``weights_only=True``; a broken file gives a clear error."""
    if not path.is_file():
        raise ResultsError(f"savepoint file missing: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ResultsError(
            f"savepoint {path} is corrupted or incomplete, or not written by snnexp: it does not "
            "read as plain tensors and numbers, so it was not loaded (loading it with "
            "weights_only=False could run code from the file); use another savepoint of the "
            "run (--epoch) or train again"
        ) from error
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else ""
        raise ResultsError(
            f"savepoint {path} is corrupted or incomplete ({type(error).__name__}: {reason}); "
            f"use another savepoint of the run (--epoch) or train again"
        ) from error
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "epoch" not in checkpoint:
        raise ResultsError(f"savepoint {path} is not a snnexp checkpoint (no model state or epoch)")
    return checkpoint


def latest_state(run_dir: Path) -> tuple[str, dict[str, Any]]:
    """The latest complete training state of a run: (what it is, the checkpoint), from the
    resume state or the latest savepoint, whichever lies later in training (a resume state
    that a savepoint superseded is removed). A damaged resume state is skipped with a warning
    (the savepoints are complete by construction)."""
    savepoints = list_savepoints(run_dir)
    resume = run_dir / RESUME_FILE
    if resume.is_file():
        try:
            state = read_checkpoint(resume)
        except ResultsError as error:
            logger.warning("%s; going on from the latest savepoint instead", error)
        else:
            position = state.get("position") or {}
            batches = int(position.get("batch", 0))
            epoch = int(state["epoch"])
            if not savepoints or (epoch, batches) > (max(savepoints), 0):
                where = f"epoch {epoch + 1}, batch {batches}" if batches else f"after epoch {epoch}"
                return f"the resume state ({where})", state
            clear_resume_state(run_dir)
    if not savepoints:
        raise ResultsError(
            f"{run_dir} has no savepoints and no resume state: the run stopped before its first "
            "savepoint; train again"
        )
    epoch = max(savepoints)
    return f"savepoint {savepoint_folder(epoch)}", load_checkpoint(savepoints[epoch])


def table_rows(
    columns: Mapping[str, Sequence[float]], names: Sequence[str]
) -> list[dict[str, float]]:
    """One dict per row from the per-column lists a checkpoint stores (no columns: no rows)."""
    if not columns:
        return []
    return [{key: columns[key][i] for key in names} for i in range(len(columns[names[0]]))]


def table_columns(
    rows: Sequence[Mapping[str, float]], names: Sequence[str]
) -> dict[str, list[float]]:
    """The per-column lists of ``rows`` that a checkpoint stores (:func:`table_rows` back)."""
    return {key: [row[key] for row in rows] for key in names}


def history_rows(columns: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The history as one dict per epoch, from the per-column lists a checkpoint stores."""
    return table_rows(columns, HISTORY_COLUMNS)


def export_run(
    run_dir: Path,
    epoch_dir: Path,
    destination: Path,
    splits: Sequence[str],
    keep_optimizer: bool = True,
    keep_hidden: bool = True,
) -> Path:
    """Copy a run trimmed to one savepoint into ``destination`` (which must not exist): the
    config, the history up to that savepoint, the log and progress plot, and ``epoch_dir`` with
    its checkpoint, the outputs of ``splits`` (compressed) and its figures (less those of other
    splits). Without ``keep_optimizer`` the optimizer state is dropped from the checkpoint (two
    thirds of its size with Adam); such a savepoint runs inference and eval but cannot be
    continued. Without ``keep_hidden`` the outputs leave out the hidden layers' arrays
    (``hidden_*``), which only figures read; eval then skips those figures, as it does for layers
    too large to save. The copy is assembled under a temporary name and appears whole."""
    if destination.exists():
        raise ResultsError(f"{destination} exists; export into a new folder")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(destination.parent, f".{destination.name}.")
    try:
        for name in (CONFIG_FILE, LOG_FILE, PROGRESS_FILE, CONVERSION_FILE):
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, staging / name)
        target = staging / epoch_dir.name
        target.mkdir()
        checkpoint = load_checkpoint(epoch_dir)
        write_history(staging, history_rows(checkpoint["history"]))
        if not keep_optimizer:
            checkpoint["optimizer"] = None
        atomic_write_bytes(target / CHECKPOINT_FILE, _checkpoint_bytes(checkpoint))
        for split in splits:
            arrays = load_outputs(epoch_dir, split)
            if arrays is None:
                raise ResultsError(f"{epoch_dir} has no outputs for split {split!r}")
            if not keep_hidden:
                arrays = {k: v for k, v in arrays.items() if not k.startswith(HIDDEN_PREFIX)}
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **arrays)
            atomic_write_bytes(target / outputs_file(split), buffer.getvalue())
        if (epoch_dir / FIGURES_FOLDER).is_dir():
            left_out = {f"_{split}" for split in SPLITS if split not in splits}
            shutil.copytree(
                epoch_dir / FIGURES_FOLDER,
                target / FIGURES_FOLDER,
                ignore=lambda _, names: [
                    name for name in names if Path(name).stem.endswith(tuple(left_out))
                ],
            )
        os.replace(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination


def load_outputs(epoch_dir: Path, split: str) -> dict[str, np.ndarray] | None:
    """The arrays of ``outputs_<split>.npz`` or None if that split was not saved."""
    path = epoch_dir / outputs_file(split)
    if not path.is_file():
        return None
    with np.load(path) as data:
        return {key: data[key] for key in data.files}
