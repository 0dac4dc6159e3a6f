"""Confusion matrices with a "no spike" column for samples without a valid prediction."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from snnexp.plots.io import label_outputs
from snnexp.plots.run import NO_SPIKE_LABEL, FigureJob, Run
from snnexp.plots.style import COLUMN_WIDTH, OKABE_ITO, PAGE_WIDTH, styled

COLORBAR_LABEL = "share of true class [%]"


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


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Accuracy in % of each true class (the diagonal over the row sums; NaN for empty rows)."""
    totals = matrix.sum(axis=1)
    correct = np.diag(matrix[:, : matrix.shape[0]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, 100.0 * correct / totals, np.nan)


def draw_confusion(
    ax: Axes,
    matrix: np.ndarray,
    class_names: Sequence[str],
    *,
    colorbar: bool = True,
    compact: bool = False,
    undecided: str = NO_SPIKE_LABEL,
) -> AxesImage:
    """Cells coloured by row percentage, each showing its count and percentage (``compact``:
    the count alone beyond 5 classes); the last column, headed ``undecided``, counts the samples
    without a prediction. Returns the image (for a shared colorbar)."""
    n_classes = matrix.shape[0]
    percent = row_percentages(matrix)
    cell_font = 7 if n_classes <= 5 else 4.5
    counts_only = compact and n_classes > 5  # a half-page panel fits no more per cell
    image = ax.imshow(percent, cmap="Blues", vmin=0.0, vmax=100.0, aspect="auto")
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(
            col,
            row,
            f"{count}" if counts_only else f"{count}\n{percent[row, col]:.1f}%",
            ha="center",
            va="center",
            fontsize=cell_font,
            color="white" if percent[row, col] > 60.0 else "black",
        )
    ax.axvline(n_classes - 0.5, color="black", linewidth=1.0)
    ax.set_xticks(range(n_classes + 1), [*class_names, undecided.replace(" ", "\n")])
    ax.set_yticks(range(n_classes), list(class_names))
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=COLORBAR_LABEL, shrink=0.9)
    return image


def accuracy_summary(matrix: np.ndarray) -> str:
    """``"accuracy 95.2 % of 1000 samples"`` for a confusion matrix."""
    total = int(matrix.sum())
    accuracy = 100.0 * np.trace(matrix[:, : matrix.shape[0]]) / max(total, 1)
    return f"accuracy {accuracy:.1f} % of {total} samples"


def plot_confusion(
    matrix: np.ndarray,
    class_names: Sequence[str],
    *,
    title: str | None = None,
    undecided: str = NO_SPIKE_LABEL,
) -> Figure:
    """Draw a confusion matrix: cells coloured by row percentage, showing count and percent."""
    n_classes = matrix.shape[0]
    with styled():
        width = min(PAGE_WIDTH, 1.6 + 0.42 * (n_classes + 1))
        fig = Figure(figsize=(width, 1.0 + 0.36 * max(n_classes, 4)), layout="constrained")
        ax = fig.subplots()
        draw_confusion(ax, matrix, class_names, undecided=undecided)
        summary = accuracy_summary(matrix)
        ax.set_title(f"{title}\n{summary}" if title else summary)
    return fig


def draw_per_class_accuracy(ax: Axes, matrix: np.ndarray, class_names: Sequence[str]) -> float:
    """Bars of the accuracy of each true class, the overall accuracy (returned, in %) as a
    dashed line."""
    accuracy = per_class_accuracy(matrix)
    overall = 100.0 * np.trace(matrix[:, : matrix.shape[0]]) / max(int(matrix.sum()), 1)
    positions = np.arange(len(accuracy))
    ax.bar(positions, accuracy, color=OKABE_ITO[0], width=0.7)
    ax.axhline(overall, color="0.3", linestyle="--", linewidth=1.0)
    for x, value in zip(positions, accuracy, strict=True):
        if np.isfinite(value):
            ax.text(x, value + 0.5, f"{value:.1f}", ha="center", va="bottom", fontsize=5.5)
    low = np.nanmin(accuracy) if np.isfinite(accuracy).any() else 0.0
    ax.set_ylim(max(0.0, low - 10.0), 102.0)
    ax.set_xticks(positions, list(class_names))
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("true class")
    ax.set_ylabel("accuracy [%]")
    return overall


def plot_per_class_accuracy(
    matrix: np.ndarray, class_names: Sequence[str], *, title: str | None = None
) -> Figure:
    """Figure of :func:`draw_per_class_accuracy`."""
    with styled():
        fig = Figure(figsize=(COLUMN_WIDTH, 2.4), layout="constrained")
        ax = fig.subplots()
        overall = draw_per_class_accuracy(ax, matrix, class_names)
        summary = f"dashed: all classes, {overall:.1f} %"
        ax.set_title(f"{title}\n{summary}" if title else summary, fontsize="small")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """``confusion_<split>`` of every split and, except for Yin-Yang,
    ``per_class_accuracy_<split>``."""
    found = []
    for split, outputs in run.outputs.items():
        n_classes = label_outputs(outputs)[1].shape[1]
        names, title = run.names(n_classes), run.split_title(split)
        matrix = confusion_matrix(outputs["labels"], outputs["predictions"], n_classes)
        found.append(
            FigureJob(
                f"confusion_{split}",
                functools.partial(
                    plot_confusion, matrix, names, title=title, undecided=run.undecided_label
                ),
            )
        )
        if run.dataset != "yin_yang":
            found.append(
                FigureJob(
                    f"per_class_accuracy_{split}",
                    functools.partial(plot_per_class_accuracy, matrix, names, title=title),
                )
            )
    return found
