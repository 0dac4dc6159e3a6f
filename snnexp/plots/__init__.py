"""Paper-style figures of a result folder, drawn by ``snnexp eval``.

Plots only read what training saved (``config.yaml``, ``history.csv`` and the
``epoch_<N>/outputs_<split>.npz`` of a savepoint); they never re-run a network. Each figure
family lives in its own module with the numbers it shows computed by pure functions:

- ``curves``: loss and accuracy per epoch (``training_curves.png``,
  ``training_curves_log_error.png``)
- ``confusion``: confusion matrix per split (``confusion_<split>.png``)
- ``spike_times``: output spike times sorted by true class (``output_times_<split>.png``)
- ``yin_yang``: classification map of Yin-Yang runs (``yin_yang_map_<split>.png``)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from snnexp.plots.confusion import confusion_matrix, plot_confusion
from snnexp.plots.curves import plot_curves
from snnexp.plots.io import (
    HISTORY_FILE,
    config_value,
    read_config,
    read_history,
    read_outputs,
    savepoint_epoch,
)
from snnexp.plots.spike_times import plot_output_times, sorted_output_stats
from snnexp.plots.style import class_names, save_figure
from snnexp.plots.yin_yang import plot_yin_yang_map

__all__ = ["render_figures"]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SPLIT_NAMES = {"train": "training set", "val": "validation set", "test": "test set"}


def render_figures(run_dir: Path, epoch_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Draw every figure that applies to the savepoint ``epoch_dir`` of the run ``run_dir``.

    Figures go to ``out_dir`` (default ``epoch_dir / "figures"``) as PNG files; the written
    paths are returned. Figures whose data was not saved are skipped with an info log.
    """
    run_dir, epoch_dir = Path(run_dir), Path(epoch_dir)
    config = read_config(run_dir)
    history = read_history(run_dir / HISTORY_FILE)
    if not epoch_dir.is_dir():
        raise FileNotFoundError(f"savepoint folder {epoch_dir} does not exist")
    out_dir = epoch_dir / "figures" if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    epoch = savepoint_epoch(epoch_dir)
    heading = str(config_value(config, "name", run_dir.name))
    if epoch is not None:
        heading += f", epoch {epoch}"

    written = _render_curves(history, config, epoch, heading, out_dir)
    for split in SPLITS:
        outputs = read_outputs(epoch_dir, split)
        if outputs is None or len(outputs["labels"]) == 0:
            logger.info("no %s outputs in %s: skipping its figures", split, epoch_dir)
            continue
        written += _render_split(
            outputs, config, f"{heading}, {SPLIT_NAMES[split]}", split, out_dir
        )
    return written


def _render_curves(
    history: dict, config: dict[str, Any], epoch: int | None, heading: str, out_dir: Path
) -> list[Path]:
    if len(history["epoch"]) == 0:
        logger.info("history.csv has no epochs yet: skipping the training curves")
        return []
    loss_name = config_value(config, "learning.loss.type")
    title = str(config_value(config, "name", "")) or None
    written = []
    for log_error, name in (
        (False, "training_curves.png"),
        (True, "training_curves_log_error.png"),
    ):
        fig = plot_curves(
            history, log_error=log_error, loss_name=loss_name, marked_epoch=epoch, title=title
        )
        written.append(save_figure(fig, out_dir / name))
    return written


def _render_split(
    outputs: dict, config: dict[str, Any], title: str, split: str, out_dir: Path
) -> list[Path]:
    labels, predictions = outputs["labels"], outputs["predictions"]
    n_classes = outputs["output_times"].shape[1]
    dataset = str(config_value(config, "dataset.name", ""))
    names = class_names(dataset, n_classes)

    matrix = confusion_matrix(labels, predictions, n_classes)
    written = [
        save_figure(plot_confusion(matrix, names, title=title), out_dir / f"confusion_{split}.png")
    ]

    mean, std = sorted_output_stats(outputs["output_times"], labels)
    t_correct = None
    if config_value(config, "learning.loss.type") == "mse":
        t_correct = config_value(config, "learning.loss.t_correct")
    fig = plot_output_times(mean, std, names, t_correct=t_correct, title=title)
    written.append(save_figure(fig, out_dir / f"output_times_{split}.png"))

    if dataset != "yin_yang":
        return written
    if "samples" not in outputs:
        logger.info("no samples in the %s outputs: skipping the Yin-Yang map", split)
        return written
    fig = plot_yin_yang_map(outputs["samples"], labels, predictions, names, title=title)
    written.append(save_figure(fig, out_dir / f"yin_yang_map_{split}.png"))
    return written
