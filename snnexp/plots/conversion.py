"""Figures of a converted run (``snnexp convert``), from its conversion.json and those of the
other conversions of the same ANN savepoint in the same results folder (one per code).

- ``conversion_accuracy_<split>``: SNN accuracy against the simulated steps, one curve per
  code, the ANN's accuracy as a line;
- ``conversion_spikes_<split>``: spikes per sample in each hidden layer (mean and standard
  deviation over the samples), one bar per code;
- ``conversion_operations_<split>``: synaptic operations per sample of each code against the
  ANN's multiply-accumulates.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from snnexp.conversion.summary import read_conversion
from snnexp.errors import ResultsError
from snnexp.plots.run import SPLIT_NAMES, FigureJob, Run
from snnexp.plots.style import COLUMN_WIDTH, OKABE_ITO, PAGE_WIDTH, styled
from snnexp.run.files import CONVERSION_FILE

ANN_COLOR = "black"


def sibling_conversions(run_dir: Path, summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Code -> conversion summary of this run and of the latest other conversion of the same
    ANN savepoint per code in the same results folder (this run's own code: this run)."""
    found: dict[str, tuple[float, dict[str, Any]]] = {}
    for path in sorted(run_dir.parent.glob(f"*/{CONVERSION_FILE}")):
        if path.parent == run_dir:
            continue
        try:
            other = read_conversion(path.parent)
        except ResultsError:
            continue
        same_source = other is not None and (
            other.get("source") == summary["source"]
            and other.get("source_epoch") == summary["source_epoch"]
        )
        if same_source and other["code"] != summary["code"]:
            modified = path.stat().st_mtime
            if other["code"] not in found or found[other["code"]][0] < modified:
                found[other["code"]] = (modified, other)
    codes = {code: other for code, (_, other) in found.items()}
    codes[summary["code"]] = summary
    return dict(sorted(codes.items()))


def plot_accuracy_by_step(curves: dict[str, np.ndarray], ann_accuracy: float, title: str) -> Figure:
    """SNN accuracy (percent) against the steps, one curve per code; the ANN as a line."""
    with styled():
        fig = Figure(figsize=(COLUMN_WIDTH * 1.6, 2.8), layout="constrained")
        ax = fig.subplots()
        for color, (code, accuracy) in zip(OKABE_ITO, curves.items(), strict=False):
            steps = np.arange(1, len(accuracy) + 1)
            ax.plot(steps, 100 * accuracy, color=color, label=code)
        ax.axhline(100 * ann_accuracy, color=ANN_COLOR, ls="--", lw=1, label="ANN")
        best = max(float(np.max(a)) for a in curves.values())
        low = min(100 * ann_accuracy, 100 * best) - 5
        ax.set_ylim(max(low, 0), 100)
        ax.set_xlabel("simulated steps")
        ax.set_ylabel("accuracy [%]")
        ax.set_title(title, fontsize="small")
        ax.legend(fontsize="small")
    return fig


def plot_spikes_per_layer(layers: dict[str, dict[str, dict[str, float]]], title: str) -> Figure:
    """Bars: spikes per sample in each hidden layer (error bars: one standard deviation over
    the samples), grouped by layer, one bar per code."""
    codes = list(layers)
    names = list(next(iter(layers.values())))
    width = 0.8 / len(codes)
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH * 0.7, 2.8), layout="constrained")
        ax = fig.subplots()
        x = np.arange(len(names))
        for k, (color, code) in enumerate(zip(OKABE_ITO, codes, strict=False)):
            means = [layers[code][name]["mean"] for name in names]
            sds = [math.sqrt(layers[code][name]["var"]) for name in names]
            ax.bar(
                x + (k - (len(codes) - 1) / 2) * width,
                means,
                width,
                yerr=sds,
                color=color,
                label=code,
                capsize=2,
            )
        ax.set_xticks(x, names)
        ax.set_yscale("log")
        ax.set_ylabel("spikes per sample")
        ax.set_title(title, fontsize="small")
        ax.legend(fontsize="small")
    return fig


def plot_operations(synops: dict[str, float], macs: float, title: str) -> Figure:
    """Bars: synaptic operations per sample of each code; the ANN's MACs as a line."""
    with styled():
        fig = Figure(figsize=(COLUMN_WIDTH * 1.4, 2.6), layout="constrained")
        ax = fig.subplots()
        codes = list(synops)
        ax.bar(codes, [synops[c] / 1e6 for c in codes], color=OKABE_ITO[: len(codes)])
        ax.axhline(macs / 1e6, color=ANN_COLOR, ls="--", lw=1, label="ANN MACs")
        ax.set_ylabel("operations per sample [millions]")
        ax.set_title(title, fontsize="small")
        ax.legend(fontsize="small")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    summary = read_conversion(run.run_dir)
    if summary is None:
        return []
    siblings = functools.cache(lambda: sibling_conversions(run.run_dir, summary))
    planned = []
    for split in summary["snn"]:
        where = f"{run.value('name', run.run_dir.name)}, {SPLIT_NAMES[split]}"

        def accuracy(split: str = split, where: str = where) -> Figure:
            curves = {
                code: np.asarray(other["snn"][split]["accuracy_by_step"])
                for code, other in siblings().items()
                if split in other["snn"]
            }
            return plot_accuracy_by_step(curves, summary["ann"]["accuracy"][split], where)

        def spikes(split: str = split, where: str = where) -> Figure:
            layers = {
                code: other["snn"][split]["spikes_per_sample"]
                for code, other in siblings().items()
                if split in other["snn"]
            }
            return plot_spikes_per_layer(layers, where)

        def operations(split: str = split, where: str = where) -> Figure:
            synops = {
                f"{code} ({other['steps']} steps)": other["snn"][split]["synops_per_sample"]
                for code, other in siblings().items()
                if split in other["snn"]
            }
            return plot_operations(synops, summary["ann"]["macs_per_sample"], where)

        planned += [
            FigureJob(f"conversion_accuracy_{split}", accuracy),
            FigureJob(f"conversion_spikes_{split}", spikes),
            FigureJob(f"conversion_operations_{split}", operations),
        ]
    return planned
