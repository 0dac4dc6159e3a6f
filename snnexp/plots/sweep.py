"""Figures of a sweep or a comparison: a metric against each swept key (mean +- sd over seeds as
error bars) and the validation curves of every point or run overlaid (mean +- sd band)."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from snnexp.plots.style import OKABE_ITO, PAGE_WIDTH, save_figure, styled
from snnexp.sweep.summary import METRICS, PointSummary, RunResult, shown_value

logger = logging.getLogger(__name__)

CURVES_FILE = "validation_curves.png"
PLOTTED_METRIC = "test_accuracy"


def metric_file(metric: str, key: str) -> str:
    """``test_accuracy_by_learning.optimizer.lr.png`` (characters a file name cannot hold: _)."""
    return f"{metric}_by_{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.png"


def draw_sweep_figures(points: Sequence[PointSummary], keys: Sequence[str], folder: Path) -> None:
    """The sweep's figures in ``folder``: the test accuracy against each swept key, and the
    validation curves of every point."""
    folder.mkdir(exist_ok=True)
    finished = [point for point in points if point.n]
    if not finished:
        return
    for key in keys:
        save_figure(
            metric_by_key(finished, keys, key, PLOTTED_METRIC),
            folder / metric_file(PLOTTED_METRIC, key),
        )
    groups = [(_point_label(point, keys), point.runs) for point in finished]
    save_figure(curves_figure(groups), folder / CURVES_FILE)


def _point_label(point: PointSummary, keys: Sequence[str]) -> str:
    values = ", ".join(
        f"{key.rsplit('.', 1)[-1]}={shown_value(point.values.get(key))}" for key in keys
    )
    return f"{point.point} {values}".strip()


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def metric_by_key(
    points: Sequence[PointSummary], keys: Sequence[str], key: str, metric: str
) -> Figure:
    """``metric`` (mean +- sd over seeds, percent) against the values of ``key``: one line per
    setting of the other swept keys. Numbers on a numeric (log, when the values span more than a
    factor 20) axis, anything else as categories."""
    others = [k for k in keys if k != key]
    lines: dict[tuple, list[PointSummary]] = {}
    for point in points:
        lines.setdefault(tuple(shown_value(point.values.get(k)) for k in others), []).append(point)
    values = [point.values.get(key) for point in points]
    numeric = all(_as_number(v) is not None for v in values)
    categories = list(dict.fromkeys(shown_value(v) for v in values))
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH / 2, 2.6), layout="constrained")
        ax = fig.add_subplot()
        for index, (label, members) in enumerate(lines.items()):
            xs = [
                _as_number(p.values.get(key))
                if numeric
                else categories.index(shown_value(p.values.get(key)))
                for p in members
            ]
            stats = [p.metric(metric) for p in members]
            order = np.argsort(xs)
            ax.errorbar(
                np.asarray(xs)[order],
                [100 * stats[i]["mean"] for i in order],
                yerr=[
                    100 * (stats[i]["sd"] if math.isfinite(stats[i]["sd"]) else 0.0) for i in order
                ],
                marker="o",
                linestyle="-" if numeric else "none",
                capsize=3,
                color=OKABE_ITO[index % len(OKABE_ITO)],
                label=", ".join(
                    f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(others, label, strict=True)
                ),
            )
        if numeric:
            positive = [v for v in values if v > 0]
            if len(positive) == len(values) and max(positive) / min(positive) > 20:
                ax.set_xscale("log")
        else:
            ax.set_xticks(range(len(categories)), categories)
            ax.margins(x=0.25)
        ax.set_xlabel(key)
        ax.set_ylabel(f"{METRICS[metric]} [%]\nmean ± sd over seeds")
        if others:
            ax.legend(fontsize="small")
    return fig


def curves_figure(groups: Sequence[tuple[str, Sequence[RunResult]]]) -> Figure:
    """Validation accuracy against epoch: per group the mean over its runs with a +- sd band
    (a group of one run: its curve)."""
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 3.0), layout="constrained")
        ax = fig.add_subplot()
        for index, (label, runs) in enumerate(groups):
            epochs, curves = _common_epochs(runs)
            if not len(epochs):
                continue
            color = OKABE_ITO[index % len(OKABE_ITO)]
            mean = 100 * curves.mean(axis=0)
            ax.plot(epochs, mean, color=color, label=f"{label} (n={len(runs)})")
            if len(runs) > 1:
                sd = 100 * curves.std(axis=0, ddof=1)
                ax.fill_between(epochs, mean - sd, mean + sd, color=color, alpha=0.2, linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy [%]")
        if len(groups) <= 12:
            ax.legend(fontsize="small")
    return fig


def _common_epochs(runs: Sequence[RunResult]) -> tuple[np.ndarray, np.ndarray]:
    """The epochs (>= 1) every run has, and the runs' validation accuracies there."""
    common = None
    for run in runs:
        trained = set(run.epochs[run.epochs >= 1].tolist())
        common = trained if common is None else common & trained
    epochs = np.array(sorted(common or ()), dtype=np.int64)
    curves = np.array(
        [[run.val_curve[run.epochs == e][-1] for e in epochs] for run in runs], dtype=np.float64
    )
    return epochs, curves.reshape(len(runs), len(epochs))
