"""Example images (MNIST family) with their output spike times, when a savepoint stores them."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from snnexp.plots.io import label_outputs
from snnexp.plots.run import FigureJob, Run
from snnexp.plots.style import CORRECT_COLOR, NO_SPIKE_COLOR, PAGE_WIDTH, TIME_LABEL, styled

logger = logging.getLogger(__name__)


def image_side(n_features: int) -> int | None:
    """Side of the square image a flat sample of ``n_features`` pixels is, else ``None``."""
    side = math.isqrt(n_features)
    return side if side * side == n_features and side > 2 else None


def first_of_each_class(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Index of the first sample of every class present, in class order."""
    labels = np.asarray(labels)
    return np.array(
        [np.flatnonzero(labels == c)[0] for c in range(n_classes) if (labels == c).any()]
    )


def plot_examples(
    samples: np.ndarray,
    output_times: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    title: str | None = None,
    xlabel: str = f"output spike time {TIME_LABEL}",
) -> Figure:
    """One example per class: the image (top) and the spike time (or read-out score) of every
    label neuron (bottom; the true class's neuron highlighted, silent neurons omitted)."""
    n_classes = output_times.shape[1]
    side = image_side(samples.shape[1])
    chosen = first_of_each_class(labels, n_classes)
    finite = output_times[chosen][np.isfinite(output_times[chosen])]
    high = float(finite.max()) * 1.05 if finite.size else 1.0
    low = min(0.0, float(finite.min()) * 1.05) if finite.size else 0.0
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 2.6), layout="constrained")
        axes = fig.subplots(2, len(chosen), height_ratios=[1.0, 1.3], squeeze=False)
        for column, index in enumerate(chosen):
            image_ax, time_ax = axes[0, column], axes[1, column]
            image_ax.imshow(samples[index].reshape(side, side), cmap="gray_r")
            image_ax.set_axis_off()
            image_ax.set_title(f"class {class_names[labels[index]]}", fontsize="small")
            colors = [
                CORRECT_COLOR if j == labels[index] else NO_SPIKE_COLOR for j in range(n_classes)
            ]
            times = np.where(np.isfinite(output_times[index]), output_times[index], np.nan)
            time_ax.barh(np.arange(n_classes), times, color=colors, height=0.7)
            time_ax.set_xlim(low, high)
            time_ax.set_yticks(range(n_classes), list(class_names), fontsize=5)
            time_ax.invert_yaxis()
            time_ax.tick_params(axis="x", labelsize=5)
            if column == 0:
                time_ax.set_ylabel("label neuron")
        fig.supxlabel(xlabel, fontsize="small")
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """Image datasets: ``examples_<split>`` of every split that stores its images (or the
    first image of each class)."""
    if run.dataset == "yin_yang":
        return []
    found = []
    for split, outputs in run.outputs.items():
        samples, labels = outputs.get("samples"), outputs["labels"]
        _, times = label_outputs(outputs)
        names = run.names(times.shape[1])
        if "example_images" in outputs:
            index = outputs["example_index"]
            samples, times, labels = outputs["example_images"], times[index], labels[index]
        if samples is None or samples.ndim != 2 or image_side(samples.shape[1]) is None:
            logger.info("the %s outputs store no images: skipping examples_%s", split, split)
            continue
        found.append(
            FigureJob(
                f"examples_{split}",
                functools.partial(
                    plot_examples,
                    samples,
                    times,
                    labels,
                    names,
                    title=run.split_title(split),
                    xlabel=run.output_label,
                ),
            )
        )
    return found
