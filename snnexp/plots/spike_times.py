"""Output spike times sorted by true class: the correct label neuron should spike first."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from snnexp.plots.style import TIME_LABEL, class_colors, styled


def sorted_output_stats(
    output_times: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the finite output spike times per (true class, neuron).

    ``mean[c, j]`` averages ``output_times[labels == c, j]`` over its finite entries (neurons
    that did not spike are left out); NaN where there is none. The std is the population
    one (numpy's default, ddof=0). Both arrays have shape ``(n_classes, n_classes)`` with
    ``n_classes = output_times.shape[1]``.
    """
    output_times = np.asarray(output_times, dtype=np.float64)
    labels = np.asarray(labels)
    n_classes = output_times.shape[1]
    mean = np.full((n_classes, n_classes), np.nan)
    std = np.full((n_classes, n_classes), np.nan)
    for c in range(n_classes):
        times = output_times[labels == c]
        finite = np.isfinite(times)
        count = finite.sum(axis=0)
        valid = count > 0
        sums = np.where(finite, times, 0.0).sum(axis=0)
        mean[c, valid] = sums[valid] / count[valid]
        squares = np.where(finite, (times - mean[c]) ** 2, 0.0).sum(axis=0)
        std[c, valid] = np.sqrt(squares[valid] / count[valid])
    return mean, std


def plot_output_times(
    mean: np.ndarray,
    std: np.ndarray,
    class_names: Sequence[str],
    *,
    t_correct: float | None = None,
    title: str | None = None,
) -> Figure:
    """Grouped mean +- std of output spike times: one group per true class, one point per neuron.

    The correct neuron of each group is ringed in black. ``t_correct`` (target time of the
    correct neuron for MSE-type losses) is drawn as a dotted line when given.
    """
    n_classes = mean.shape[0]
    colors = class_colors(n_classes)
    width = 0.8 / n_classes
    offsets = (np.arange(n_classes) - (n_classes - 1) / 2) * width
    groups = np.arange(n_classes)
    with styled():
        fig = Figure(figsize=(max(5.5, 1.0 + 0.75 * n_classes) + 1.4, 3.8), layout="constrained")
        ax = fig.subplots()
        handles = [
            ax.errorbar(
                groups + offsets[j],
                mean[:, j],
                yerr=std[:, j],
                fmt="o",
                color=colors[j],
                markersize=5,
                capsize=2.5,
                elinewidth=1.1,
                label=class_names[j],
            )
            for j in range(n_classes)
        ]
        ring = ax.scatter(
            groups + offsets,
            np.diag(mean),
            s=110,
            facecolors="none",
            edgecolors="black",
            linewidths=1.1,
            zorder=4,
            label="correct neuron",
        )
        handles.append(ring)
        if t_correct is not None:
            target = ax.axhline(
                t_correct, color="0.4", linestyle=":", linewidth=1.2, label=r"$t_\mathrm{correct}$"
            )
            handles.append(target)
        for boundary in groups[1:] - 0.5:
            ax.axvline(boundary, color="0.85", linewidth=0.8)
        ax.set_xticks(groups, list(class_names))
        ax.set_xlim(-0.5, n_classes - 0.5)
        ax.grid(axis="x", visible=False)
        ax.set_xlabel("true class")
        ax.set_ylabel(f"output spike time {TIME_LABEL}")
        ax.legend(
            handles=handles,
            title="label neuron\n(mean ± std)",
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
        )
        if title:
            ax.set_title(title)
    return fig
