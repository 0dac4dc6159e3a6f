"""Confusion matrices with a "no spike" column for samples without a valid prediction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from snnexp.plots.style import styled

NO_SPIKE_LABEL = "no spike"


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class), shape ``(n_classes, n_classes + 1)``.

    Rows are true classes, columns predicted classes; the last column counts predictions of
    -1 (no output neuron spiked, never correct).
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(
            f"labels {labels.shape} and predictions {predictions.shape} must be equal 1-d shapes"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    if predictions.size and (predictions.min() < -1 or predictions.max() >= n_classes):
        raise ValueError(
            f"predictions must lie in [-1, {n_classes}), "
            f"got {predictions.min()}..{predictions.max()}"
        )
    columns = np.where(predictions == -1, n_classes, predictions)
    matrix = np.zeros((n_classes, n_classes + 1), dtype=np.int64)
    np.add.at(matrix, (labels, columns), 1)
    return matrix


def row_percentages(matrix: np.ndarray) -> np.ndarray:
    """Each row of a count matrix in percent of its sum (rows without samples stay 0)."""
    totals = matrix.sum(axis=1, keepdims=True)
    return 100.0 * matrix / np.maximum(totals, 1)


def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str], *, title: str | None = None
) -> Figure:
    """Draw a confusion matrix: cells coloured by row percentage, showing count and percent."""
    n_classes = matrix.shape[0]
    percent = row_percentages(matrix)
    total = int(matrix.sum())
    accuracy = 100.0 * np.trace(matrix[:, :n_classes]) / max(total, 1)
    cell_font = 9 if n_classes <= 5 else 6.5
    with styled():
        fig = Figure(
            figsize=(2.4 + 0.62 * (n_classes + 1), 1.4 + 0.55 * n_classes), layout="constrained"
        )
        ax = fig.subplots()
        image = ax.imshow(percent, cmap="Blues", vmin=0.0, vmax=100.0, aspect="auto")
        for (row, col), count in np.ndenumerate(matrix):
            ax.text(
                col,
                row,
                f"{count}\n{percent[row, col]:.1f}%",
                ha="center",
                va="center",
                fontsize=cell_font,
                color="white" if percent[row, col] > 60.0 else "black",
            )
        ax.axvline(n_classes - 0.5, color="black", linewidth=1.2)
        ax.set_xticks(range(n_classes + 1), [*class_names, NO_SPIKE_LABEL])
        ax.set_yticks(range(n_classes), list(class_names))
        ax.tick_params(length=0)
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        fig.colorbar(image, ax=ax, label="share of true class [%]", shrink=0.9)
        summary = f"accuracy {accuracy:.1f} % of {total} samples"
        ax.set_title(f"{title}\n{summary}" if title else summary)
    return fig
