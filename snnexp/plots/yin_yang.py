"""Yin-Yang maps over the input plane: predicted class, label-neuron and hidden-neuron spike
times, and the time difference between the correct and the earliest wrong label neuron."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from snnexp.plots.histograms import hidden_layers
from snnexp.plots.io import label_outputs
from snnexp.plots.run import FigureJob, Run
from snnexp.plots.style import (
    COLUMN_WIDTH,
    DIVERGING_CMAP,
    NO_SPIKE_COLOR,
    PAGE_WIDTH,
    TIME_CMAP,
    TIME_LABEL,
    TIME_UNIT,
    class_colors,
    styled,
)

logger = logging.getLogger(__name__)

HIDDEN_MAP_NEURONS = 6
"""Hidden neurons shown in the hidden-time map."""

R_BIG = 0.5
R_SMALL = 0.1


def _arc(cx: float, cy: float, r: float, start: float, stop: float, n: int) -> np.ndarray:
    angles = np.linspace(start, stop, n)
    return np.column_stack([cx + r * np.cos(angles), cy + r * np.sin(angles)])


def outline_curves(n_points: int = 256) -> list[np.ndarray]:
    """The Yin-Yang outline as polylines of shape ``(k, 2)`` in input coordinates (x, y).

    Big circle (radius R_BIG around (R_BIG, R_BIG)); the S-curve between yang (below) and
    yin (above): lower half of the circle of radius R_BIG/2 around (R_BIG/2, R_BIG), then the
    upper half of the one around (3 R_BIG/2, R_BIG); the two dots of radius R_SMALL.
    """
    c, half = R_BIG, R_BIG / 2
    s_curve = np.concatenate(
        [
            _arc(half, c, half, np.pi, 2 * np.pi, n_points // 2),
            _arc(c + half, c, half, np.pi, 0.0, n_points // 2)[1:],
        ]
    )
    return [
        _arc(c, c, R_BIG, 0.0, 2 * np.pi, n_points),
        s_curve,
        _arc(half, c, R_SMALL, 0.0, 2 * np.pi, n_points // 2),
        _arc(c + half, c, R_SMALL, 0.0, 2 * np.pi, n_points // 2),
    ]


def _frame(ax: Axes) -> None:
    """Outline, equal axes and labels of a map over the Yin-Yang input plane."""
    for curve in outline_curves():
        ax.plot(*curve.T, color="0.15", linewidth=0.8, zorder=3)
    ax.set_aspect("equal")
    ax.set_xlim(-0.02, 2 * R_BIG + 0.02)
    ax.set_ylim(-0.02, 2 * R_BIG + 0.02)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(False)


def _point_size(n: int) -> float:
    return 9.0 if n <= 2000 else 3.0


def draw_yin_yang_map(
    ax: Axes,
    samples: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    class_names: Sequence[str],
    *,
    legend: bool = True,
) -> None:
    """Points (x, y) = ``samples[:, :2]`` coloured by prediction; errors marked by a black x."""
    xy = np.asarray(samples)[:, :2]
    errors = predictions != labels
    size = _point_size(len(xy))
    colors = class_colors(len(class_names))
    groups = [(c, name, colors[c]) for c, name in enumerate(class_names)]
    groups.append((-1, "no spike", NO_SPIKE_COLOR))
    for c, name, color in groups:
        chosen = predictions == c
        if c >= 0 or chosen.any():
            ax.scatter(*xy[chosen].T, s=size, color=color, linewidths=0, label=name)
    ax.scatter(
        *xy[errors].T,
        s=size * 1.6,
        marker="x",
        color="black",
        linewidths=0.7,
        label=f"misclassified ({errors.sum()})",
    )
    _frame(ax)
    if legend:
        ax.legend(
            title="predicted class",
            title_fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            markerscale=1.5,
            borderaxespad=0.0,
        )


def plot_yin_yang_map(
    samples: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    class_names: Sequence[str],
    *,
    title: str | None = None,
) -> Figure:
    """Figure of :func:`draw_yin_yang_map` with the legend to the right."""
    with styled():
        fig = Figure(figsize=(COLUMN_WIDTH + 1.0, 2.9), layout="constrained")
        ax = fig.subplots()
        draw_yin_yang_map(ax, samples, labels, predictions, class_names)
        if title:
            ax.set_title(title, fontsize="small")
    return fig


def time_difference(output_times: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``t_correct - min(t_wrong)`` per sample: negative where the correct label neuron spikes
    first (the margin of a correct decision), positive where a wrong one beats it.

    +inf where only wrong neurons spike, -inf where only the correct one does, NaN where no
    label neuron spikes.
    """
    output_times = np.asarray(output_times, dtype=np.float64)
    rows = np.arange(len(labels))
    correct = output_times[rows, labels]
    wrong = output_times.copy()
    wrong[rows, labels] = np.inf
    earliest_wrong = wrong.min(axis=1)
    with np.errstate(invalid="ignore"):
        difference = correct - earliest_wrong
    return np.where(np.isinf(correct) & np.isinf(earliest_wrong), np.nan, difference)


def pick_hidden_neurons(hidden_times: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to ``count`` hidden neurons whose finite spike times vary most over the
    samples (neurons that never spike, or spike in fewer than 2 samples, are left out)."""
    hidden_times = np.asarray(hidden_times, dtype=np.float64)
    finite = np.isfinite(hidden_times)
    spread = np.full(hidden_times.shape[1], -np.inf)
    usable = finite.sum(axis=0) >= 2
    if usable.any():
        masked = np.where(finite, hidden_times, np.nan)[:, usable]
        spread[usable] = np.nanstd(masked, axis=0)
    order = np.argsort(-spread, kind="stable")
    return order[np.isfinite(spread[order])][:count]


def _value_map(
    ax: Axes, xy: np.ndarray, values: np.ndarray, cmap: str, norm: Normalize
) -> ScalarMappable:
    """Points coloured by ``values``; non-finite ones (no spike) as small grey dots."""
    size = _point_size(len(xy))
    finite = np.isfinite(values)
    mappable = ax.scatter(
        *xy[finite].T, c=values[finite], s=size, cmap=cmap, norm=norm, linewidths=0
    )
    _frame(ax)
    if not finite.all():
        ax.scatter(
            *xy[~finite].T, s=size * 0.6, color=NO_SPIKE_COLOR, linewidths=0, label="no spike"
        )
        ax.legend(loc="lower left", borderaxespad=0.0, handletextpad=0.2, markerscale=1.5)
    return mappable


def _time_norm(values: np.ndarray) -> Normalize:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Normalize(0.0, 1.0)
    return Normalize(float(finite.min()), float(finite.max()))


def plot_label_time_maps(
    samples: np.ndarray,
    output_times: np.ndarray,
    class_names: Sequence[str],
    *,
    title: str | None = None,
) -> Figure:
    """Spike time of each label neuron over the input plane (grey: the neuron did not spike),
    on one colour scale shared by all label neurons."""
    xy = np.asarray(samples)[:, :2]
    norm = _time_norm(np.asarray(output_times))
    n = len(class_names)
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 2.6), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, n, sharey=True))
        for j, ax in enumerate(axes):
            mappable = _value_map(ax, xy, output_times[:, j], TIME_CMAP, norm)
            ax.set_title(f"label neuron {class_names[j]}", fontsize="small")
            if j:
                ax.set_ylabel("")
        fig.colorbar(mappable, ax=list(axes), label=f"spike time {TIME_LABEL}", shrink=0.85)
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def plot_time_difference_map(
    samples: np.ndarray,
    output_times: np.ndarray,
    labels: np.ndarray,
    *,
    title: str | None = None,
) -> Figure:
    """:func:`time_difference` over the input plane on a diverging scale centred at 0 (blue:
    correct neuron first); infinite differences are drawn at the end of the scale, samples
    without any label spike in grey."""
    xy = np.asarray(samples)[:, :2]
    difference = time_difference(output_times, labels)
    finite = difference[np.isfinite(difference)]
    bound = (float(np.abs(finite).max()) if finite.size else 0.0) or 1.0
    shown = np.clip(difference, -bound, bound)
    with styled():
        fig = Figure(figsize=(COLUMN_WIDTH + 0.6, 2.9), layout="constrained")
        ax = fig.subplots()
        mappable = _value_map(ax, xy, shown, DIVERGING_CMAP, TwoSlopeNorm(0.0, -bound, bound))
        fig.colorbar(
            mappable,
            ax=ax,
            label=r"$t_\mathrm{correct} - t_\mathrm{earliest\ wrong}$ " + f"[{TIME_UNIT}]",
            shrink=0.9,
        )
        wrong = int((difference > 0).sum())
        ax.set_title(
            (f"{title}\n" if title else "") + f"correct neuron later in {wrong} samples",
            fontsize="small",
        )
    return fig


def plot_hidden_time_maps(
    samples: np.ndarray,
    hidden_times: np.ndarray,
    neurons: Sequence[int],
    *,
    title: str | None = None,
) -> Figure:
    """Spike time of a few hidden neurons over the input plane (grey: no spike)."""
    xy = np.asarray(samples)[:, :2]
    n = len(neurons)
    columns = min(n, 3)
    rows = max(1, -(-n // columns))
    norm = _time_norm(np.asarray(hidden_times)[:, list(neurons)])
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 0.4 + 2.3 * rows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, sharey=True)).ravel()
        mappable = None
        for ax, neuron in zip(axes, neurons, strict=False):
            mappable = _value_map(ax, xy, hidden_times[:, neuron], TIME_CMAP, norm)
            ax.set_title(f"hidden neuron {neuron}", fontsize="small")
            ax.label_outer()
        for ax in axes[n:]:
            ax.set_visible(False)
        if mappable is not None:
            fig.colorbar(mappable, ax=list(axes), label=f"spike time {TIME_LABEL}", shrink=0.85)
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """Yin-Yang runs, every split that saved its samples: ``yin_yang_map_<split>`` and, for
    first-spike runs, ``yin_yang_label_times_<split>``, ``yin_yang_time_difference_<split>`` and
    ``yin_yang_hidden_times_<split>``."""
    if run.dataset != "yin_yang":
        return []
    found = []
    for split, outputs in run.outputs.items():
        if outputs.get("samples") is None:
            logger.info("no samples in the %s outputs: skipping the Yin-Yang maps", split)
            continue
        split_jobs = _split_jobs(run, split, outputs)
        found += split_jobs[:1] if run.scores else split_jobs
    return found


def _split_jobs(run: Run, split: str, outputs: dict[str, np.ndarray]) -> list[FigureJob]:
    samples, labels = outputs["samples"], outputs["labels"]
    _, times = label_outputs(outputs)
    names, title = run.names(times.shape[1]), run.split_title(split)
    found = [
        FigureJob(
            f"yin_yang_map_{split}",
            functools.partial(
                plot_yin_yang_map, samples, labels, outputs["predictions"], names, title=title
            ),
        ),
        FigureJob(
            f"yin_yang_label_times_{split}",
            functools.partial(plot_label_time_maps, samples, times, names, title=title),
        ),
        FigureJob(
            f"yin_yang_time_difference_{split}",
            functools.partial(plot_time_difference_map, samples, times, labels, title=title),
        ),
    ]
    if run.scores:
        return found
    hidden = hidden_layers(outputs)
    if not hidden:
        logger.info("no hidden times in the %s outputs: skipping the hidden-time map", split)
        return found
    neurons = pick_hidden_neurons(hidden[0], HIDDEN_MAP_NEURONS)
    if len(neurons) == 0:
        logger.info("no hidden neuron spikes in the %s outputs: skipping its map", split)
        return found
    found.append(
        FigureJob(
            f"yin_yang_hidden_times_{split}",
            functools.partial(
                plot_hidden_time_maps,
                samples,
                hidden[0],
                neurons,
                title=f"{title}, first hidden layer",
            ),
        )
    )
    return found
