"""Output spike times sorted by true class: the correct label neuron should spike first."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from snnexp.plots.io import label_outputs, read_outputs
from snnexp.plots.run import OUTPUT_TIME_LABEL, SPLIT_NAMES, FigureJob, Run
from snnexp.plots.style import COLUMN_WIDTH, PAGE_WIDTH, class_colors, styled


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


def draw_output_times(
    ax: Axes,
    mean: np.ndarray,
    std: np.ndarray,
    class_names: Sequence[str],
    *,
    t_correct: float | None = None,
    legend: bool = True,
    ylabel: str = OUTPUT_TIME_LABEL,
) -> list[Artist]:
    """Grouped mean +- std of output spike times: one group per true class, one point per neuron.

    The correct neuron of each group is ringed in black; ``t_correct`` (target time of the
    correct neuron for MSE-type losses) is drawn as a dotted line when given. Returns the
    legend handles; ``legend`` puts the legend to the right of ``ax``. ``ylabel`` names the
    quantity (read-out scores of time-stepped networks are drawn the same way).
    """
    n_classes = mean.shape[0]
    colors = class_colors(n_classes)
    width = 0.8 / n_classes
    offsets = (np.arange(n_classes) - (n_classes - 1) / 2) * width
    groups = np.arange(n_classes)
    small = n_classes > 5
    handles = [
        ax.errorbar(
            groups + offsets[j],
            mean[:, j],
            yerr=std[:, j],
            fmt="o",
            color=colors[j],
            markersize=2.0 if small else 3.5,
            capsize=0.0 if small else 2.0,
            elinewidth=0.6 if small else 0.9,
            label=class_names[j],
        )
        for j in range(n_classes)
    ]
    ring = ax.scatter(
        groups + offsets,
        np.diag(mean),
        s=25 if small else 60,
        facecolors="none",
        edgecolors="black",
        linewidths=0.9,
        zorder=4,
        label="correct neuron",
    )
    handles.append(ring)
    if t_correct is not None:
        target = ax.axhline(
            t_correct, color="0.4", linestyle=":", linewidth=1.0, label=r"$t_\mathrm{correct}$"
        )
        handles.append(target)
    for boundary in groups[1:] - 0.5:
        ax.axvline(boundary, color="0.85", linewidth=0.6)
    ax.set_xticks(groups, list(class_names))
    ax.set_xlim(-0.5, n_classes - 0.5)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("true class")
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend(
            handles=handles,
            title="label neuron\n(mean ± std)",
            title_fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
            ncols=2 if small else 1,
        )
    return handles


def plot_output_times(
    mean: np.ndarray,
    std: np.ndarray,
    class_names: Sequence[str],
    *,
    t_correct: float | None = None,
    title: str | None = None,
    ylabel: str = OUTPUT_TIME_LABEL,
) -> Figure:
    """Figure of :func:`draw_output_times` with the legend to the right."""
    n_classes = mean.shape[0]
    with styled():
        width = COLUMN_WIDTH + 1.2 if n_classes <= 5 else PAGE_WIDTH
        fig = Figure(figsize=(width, 2.6), layout="constrained")
        ax = fig.subplots()
        draw_output_times(ax, mean, std, class_names, t_correct=t_correct, ylabel=ylabel)
        if title:
            ax.set_title(title)
    return fig


def plot_output_times_over_training(
    epochs: Sequence[int],
    means: np.ndarray,
    stds: np.ndarray,
    class_names: Sequence[str],
    *,
    title: str | None = None,
    ylabel: str = OUTPUT_TIME_LABEL,
) -> Figure:
    """Per true class, each label neuron's mean +- std spike time at every savepoint.

    ``means`` and ``stds`` have shape ``(n_savepoints, n_classes, n_classes)`` as stacked
    :func:`sorted_output_stats`; the correct neuron is drawn thick, the others thin.
    """
    n_classes = means.shape[1]
    colors = class_colors(n_classes)
    columns = min(n_classes, 5)
    rows = -(-n_classes // columns)
    epochs = np.asarray(epochs)
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 0.4 + 1.8 * rows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, sharey=True)).ravel()
        for c, ax in enumerate(axes):
            if c >= n_classes:
                ax.set_visible(False)
                continue
            for j in range(n_classes):
                correct = j == c
                mean, std = means[:, c, j], stds[:, c, j]
                ax.fill_between(epochs, mean - std, mean + std, color=colors[j], alpha=0.15, lw=0)
                ax.plot(
                    epochs,
                    mean,
                    color=colors[j],
                    linewidth=2.0 if correct else 0.9,
                    marker="o",
                    markersize=2.5 if correct else 1.5,
                    label=class_names[j],
                )
            ax.set_title(f"true class {class_names[c]}", fontsize="small")
            if c % columns == 0:
                ax.set_ylabel(ylabel)
            if c >= n_classes - columns:
                ax.set_xlabel("epoch")
        fig.legend(
            *axes[0].get_legend_handles_labels(),
            title="label neuron (thick: correct)",
            title_fontsize="small",
            loc="outside lower center",
            ncols=n_classes,
        )
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """``output_times_<split>`` (``output_scores_<split>`` for time-stepped runs) of every split
    and, over two or more savepoints of the main split, ``..._over_training``."""
    t_correct = None
    if run.value("learning.loss.type") == "mse":
        t_correct = run.value("learning.loss.t_correct")
    found = [
        FigureJob(
            f"{run.output_name}_{split}",
            functools.partial(_sorted_outputs_figure, run, split, outputs, t_correct),
        )
        for split, outputs in run.outputs.items()
    ]
    split = run.main_split
    if split is not None and len(run.savepoints_with(split)) >= 2:
        found.append(
            FigureJob(
                f"{run.output_name}_over_training",
                functools.partial(_over_training_figure, run, split),
            )
        )
    return found


def _sorted_outputs_figure(
    run: Run, split: str, outputs: dict[str, np.ndarray], t_correct: float | None
) -> Figure:
    _, times = label_outputs(outputs)
    mean, std = sorted_output_stats(times, outputs["labels"])
    names = run.names(times.shape[1])
    title = run.split_title(split)
    return plot_output_times(
        mean, std, names, t_correct=t_correct, title=title, ylabel=run.output_label
    )


def _over_training_figure(run: Run, split: str) -> Figure:
    savepoints = run.savepoints_with(split)
    stats = []
    for folder in savepoints.values():
        outputs = read_outputs(folder, split)
        stats.append(sorted_output_stats(label_outputs(outputs)[1], outputs["labels"]))
    names = run.names(label_outputs(run.outputs[split])[1].shape[1])
    return plot_output_times_over_training(
        list(savepoints),
        np.stack([mean for mean, _ in stats]),
        np.stack([std for _, std in stats]),
        names,
        title=f"{run.config.get('name', run.run_dir.name)}, {SPLIT_NAMES[split]}",
        ylabel=run.output_label,
    )
