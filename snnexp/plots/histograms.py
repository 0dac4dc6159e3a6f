"""Histograms of spike times: output layer (correct vs wrong label neuron) and hidden layers."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from snnexp.plots.io import label_outputs
from snnexp.plots.run import FigureJob, Run
from snnexp.plots.style import (
    CORRECT_COLOR,
    OKABE_ITO,
    PAGE_WIDTH,
    TIME_LABEL,
    WRONG_COLOR,
    styled,
)

N_BINS = 50


def correct_and_wrong_times(
    output_times: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Spike times of the correct label neuron (one per sample) and of the wrong ones (all
    others, flattened); ``inf`` (no spike) is kept."""
    output_times = np.asarray(output_times, dtype=np.float64)
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    correct = output_times[rows, labels]
    wrong_mask = np.ones(output_times.shape, dtype=bool)
    wrong_mask[rows, labels] = False
    return correct, output_times[wrong_mask]


def silent_percent(times: np.ndarray) -> float:
    """Share in % of entries that are not finite (the neuron did not spike); 0 when empty."""
    times = np.asarray(times)
    return 100.0 * float((~np.isfinite(times)).mean()) if times.size else 0.0


def hidden_layers(
    outputs: dict[str, np.ndarray], prefix: str = "hidden_times_"
) -> list[np.ndarray]:
    """The saved ``<prefix><k>`` arrays (hidden spike times, or counts with
    ``prefix="hidden_counts_"``) in layer order (layers too large to save absent)."""
    keys = sorted(
        (k for k in outputs if k.startswith(prefix)), key=lambda k: int(k.rsplit("_")[-1])
    )
    return [outputs[k] for k in keys]


def _bins(*groups: np.ndarray) -> np.ndarray:
    finite = np.concatenate([g[np.isfinite(g)] for g in groups])
    if finite.size == 0:
        return np.linspace(0.0, 1.0, N_BINS + 1)
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, N_BINS + 1)


def _histogram(ax: Axes, times: np.ndarray, bins: np.ndarray, color: str, label: str) -> None:
    finite = times[np.isfinite(times)]
    text = f"{label} (no spike {silent_percent(times):.1f} %)"
    if finite.size:
        ax.hist(finite, bins=bins, density=True, color=color, alpha=0.55, label=text)
        ax.hist(finite, bins=bins, density=True, histtype="step", color=color, linewidth=0.9)
    else:
        ax.plot([], [], color=color, label=text)


def plot_spike_time_histograms(
    output_times: np.ndarray,
    labels: np.ndarray,
    hidden: Sequence[np.ndarray],
    *,
    title: str | None = None,
) -> Figure:
    """Output spike times of the correct vs the wrong label neurons, then one panel per hidden
    layer with the spike times of all its neurons; densities, silent shares in the legend."""
    correct, wrong = correct_and_wrong_times(output_times, labels)
    n_panels = 1 + len(hidden)
    with styled():
        fig = Figure(figsize=(min(PAGE_WIDTH, 3.5 * n_panels), 2.5), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, n_panels))
        bins = _bins(correct, wrong)
        _histogram(axes[0], correct, bins, CORRECT_COLOR, "correct label neuron")
        _histogram(axes[0], wrong, bins, WRONG_COLOR, "wrong label neurons")
        axes[0].set_title("output layer", fontsize="small")
        for k, (ax, times) in enumerate(zip(axes[1:], hidden, strict=True)):
            times = np.asarray(times, dtype=np.float64).ravel()
            _histogram(ax, times, _bins(times), OKABE_ITO[0], f"{np.shape(hidden[k])[1]} neurons")
            ax.set_title(f"hidden layer {k + 1}", fontsize="small")
        for ax in axes:
            ax.set_xlabel(f"spike time {TIME_LABEL}")
            ax.set_ylabel(r"density [1/$\tau_\mathrm{s}$]")
            ax.legend(loc="upper right", fontsize="small")
            ax.set_ylim(top=ax.get_ylim()[1] * 1.3)
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """First-spike runs: ``spike_time_histograms_<split>`` of every split."""
    if run.scores:
        return []
    return [
        FigureJob(
            f"spike_time_histograms_{split}",
            functools.partial(
                plot_spike_time_histograms,
                label_outputs(outputs)[1],
                outputs["labels"],
                hidden_layers(outputs),
                title=run.split_title(split),
            ),
        )
        for split, outputs in run.outputs.items()
    ]
