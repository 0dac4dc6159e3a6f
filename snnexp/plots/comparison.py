"""Untrained (``epoch_0``) vs trained savepoint: sorted output times and confusion matrices."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from snnexp.plots.confusion import (
    COLORBAR_LABEL,
    accuracy_summary,
    confusion_matrix,
    draw_confusion,
)
from snnexp.plots.io import label_outputs, read_outputs
from snnexp.plots.run import NO_SPIKE_LABEL, OUTPUT_TIME_LABEL, SPLIT_NAMES, FigureJob, Run
from snnexp.plots.spike_times import draw_output_times, sorted_output_stats
from snnexp.plots.style import PAGE_WIDTH, styled

logger = logging.getLogger(__name__)


class SavepointPanels(NamedTuple):
    """What the comparison shows of one savepoint."""

    epoch: int
    matrix: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def plot_comparison(
    before: SavepointPanels,
    after: SavepointPanels,
    class_names: Sequence[str],
    *,
    title: str | None = None,
    ylabel: str = OUTPUT_TIME_LABEL,
    undecided: str = NO_SPIKE_LABEL,
) -> Figure:
    """Left column the untrained network, right column the trained one: output spike times
    by true class (top, shared time axis) and confusion matrices (bottom)."""
    n_classes = before.matrix.shape[0]
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 5.2 if n_classes <= 5 else 6.4), layout="constrained")
        axes = fig.subplots(2, 2, height_ratios=[1.0, 1.1])
        top = [axes[0, 0], axes[0, 1]]
        for column, (panels, name) in enumerate(((before, "untrained"), (after, "trained"))):
            draw_output_times(
                top[column],
                panels.mean,
                panels.std,
                class_names,
                legend=column == 1,
                ylabel=ylabel,
            )
            top[column].set_title(f"{name} (epoch {panels.epoch})", fontsize="small")
            image = draw_confusion(
                axes[1, column],
                panels.matrix,
                class_names,
                colorbar=False,
                compact=True,
                undecided=undecided,
            )
            axes[1, column].set_title(accuracy_summary(panels.matrix), fontsize="small")
        fig.colorbar(image, ax=list(axes[1]), label=COLORBAR_LABEL, shrink=0.9)
        low = min(ax.get_ylim()[0] for ax in top)
        high = max(ax.get_ylim()[1] for ax in top)
        for ax in top:
            ax.set_ylim(low, high)
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def panels(epoch: int, outputs: dict[str, np.ndarray]) -> SavepointPanels:
    """The confusion matrix and sorted label outputs of one savepoint's split."""
    labels = outputs["labels"]
    _, times = label_outputs(outputs)
    mean, std = sorted_output_stats(times, labels)
    return SavepointPanels(
        epoch, confusion_matrix(labels, outputs["predictions"], times.shape[1]), mean, std
    )


def jobs(run: Run) -> list[FigureJob]:
    """``untrained_vs_trained`` of the main split, where the run kept its epoch_0."""
    split = run.main_split
    if split is None:
        return []
    savepoints = run.savepoints_with(split)
    if not (run.epoch and 0 in savepoints):
        logger.info(
            "no untrained savepoint (epoch_0) to compare with: skipping untrained_vs_trained"
        )
        return []
    outputs = run.outputs[split]

    def comparison() -> Figure:
        return plot_comparison(
            panels(0, read_outputs(savepoints[0], split)),
            panels(run.epoch or 0, outputs),
            run.names(label_outputs(outputs)[1].shape[1]),
            title=f"{run.heading}, {SPLIT_NAMES[split]}",
            ylabel=run.output_label,
            undecided=run.undecided_label,
        )

    return [FigureJob("untrained_vs_trained", comparison)]
