"""Weights of a savepoint: histograms and matrices per layer, read from ``checkpoint.pt``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from snnexp.plots.run import FigureJob, Run
from snnexp.plots.style import DIVERGING_CMAP, OKABE_ITO, PAGE_WIDTH, styled

_WEIGHT_KEY = re.compile(r"layers\.(\d+)\.weight")
_BLOCK_WEIGHT_KEY = re.compile(r"blocks\.([^.]+)\.weight")


class LayerWeights(NamedTuple):
    """Weights of one layer: ``inputs`` (n_in, n_out) from the layer below, ``bias`` (n_bias,
    n_out) from the bias spikes appended after them; ``name`` names a block of a graph (empty
    for a stack, whose layers are named by position). A convolution's kernels are its columns:
    ``inputs`` is (in_channels x kernel x kernel, channels)."""

    inputs: np.ndarray
    bias: np.ndarray
    name: str = ""


def layer_weights(state: Mapping[str, Any]) -> list[LayerWeights]:
    """Split each ``layers.<k>.weight`` of a model state dict into input and bias rows.

    The last ``len(layers.<k>.bias_times)`` rows are the bias weights (appended after the
    regular inputs, as the layers store them). A graph of blocks has ``blocks.<name>.weight``
    (dense or convolution, in config order) and its bias-spike rows in
    ``blocks.<name>.bias_weight``.
    """
    layers = sorted(
        (int(match.group(1)), key)
        for key in state
        if (match := _WEIGHT_KEY.fullmatch(key)) is not None
    )
    result = []
    for k, key in layers:
        weight = np.asarray(state[key], dtype=np.float64)
        bias_times = state.get(f"layers.{k}.bias_times")
        n_bias = 0 if bias_times is None else int(np.asarray(bias_times).size)
        n_in = weight.shape[0] - n_bias
        result.append(LayerWeights(weight[:n_in], weight[n_in:]))
    for key in state:
        match = _BLOCK_WEIGHT_KEY.fullmatch(key)
        if match is None:
            continue
        weight = np.asarray(state[key], dtype=np.float64)
        if weight.ndim == 4:
            weight = weight.reshape(weight.shape[0], -1).T
        bias = state.get(f"blocks.{match.group(1)}.bias_weight")
        bias = np.zeros((0, weight.shape[1])) if bias is None else np.asarray(bias, np.float64)
        result.append(LayerWeights(weight, bias, match.group(1)))
    return result


def _layer_names(layers: Sequence[LayerWeights]) -> list[str]:
    n_layers = len(layers)
    names = [f"hidden layer {k + 1}" for k in range(n_layers - 1)] + ["output layer"]
    return [layer.name or name for layer, name in zip(layers, names, strict=True)]


def plot_weight_histograms(layers: Sequence[LayerWeights], *, title: str | None = None) -> Figure:
    """One histogram per layer of the input weights, the bias weights as a separate colour."""
    names = _layer_names(layers)
    with styled():
        fig = Figure(figsize=(min(PAGE_WIDTH, 3.5 * len(layers)), 2.5), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(layers)))
        for ax, layer, name in zip(axes, layers, names, strict=True):
            values = layer.inputs.ravel()
            bins = np.histogram_bin_edges(np.concatenate([values, layer.bias.ravel()]), bins=50)
            ax.hist(
                values,
                bins=bins,
                color=OKABE_ITO[0],
                alpha=0.8,
                label=f"inputs ({values.size}, mean {values.mean():.2f})",
            )
            if layer.bias.size:
                ax.hist(
                    layer.bias.ravel(),
                    bins=bins,
                    color=OKABE_ITO[1],
                    alpha=0.9,
                    label=f"bias ({layer.bias.size})",
                )
            ax.axvline(0.0, color="0.3", linewidth=0.8)
            ax.set_title(
                f"{name}: {layer.inputs.shape[0]} → {layer.inputs.shape[1]}", fontsize="small"
            )
            ax.set_xlabel("weight")
            ax.set_ylabel("count")
            ax.legend(loc="upper right", fontsize="small")
            ax.set_ylim(top=ax.get_ylim()[1] * 1.25)
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def plot_weight_matrices(layers: Sequence[LayerWeights], *, title: str | None = None) -> Figure:
    """Each layer's weight matrix (inputs and bias rows below a line) on a diverging scale
    centred at 0; rows are presynaptic, columns postsynaptic neurons."""
    names = _layer_names(layers)
    with styled():
        fig = Figure(figsize=(min(PAGE_WIDTH, 3.5 * len(layers)), 3.2), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(layers)))
        for ax, layer, name in zip(axes, layers, names, strict=True):
            matrix = np.concatenate([layer.inputs, layer.bias])
            bound = float(np.abs(matrix).max()) or 1.0
            image = ax.imshow(
                matrix,
                cmap=DIVERGING_CMAP,
                norm=TwoSlopeNorm(0.0, -bound, bound),
                aspect="auto",
                interpolation="nearest",
            )
            if layer.bias.size:
                ax.axhline(layer.inputs.shape[0] - 0.5, color="black", linewidth=0.8)
            ax.grid(False)
            ax.set_title(name, fontsize="small")
            ax.set_xlabel("postsynaptic neuron")
            ax.set_ylabel(f"presynaptic neuron (+{layer.bias.shape[0]} bias)")
            fig.colorbar(image, ax=ax, label="weight", shrink=0.9)
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """``weight_histograms`` and ``weight_matrices``, from the savepoint's checkpoint."""
    if not run.has_checkpoint:
        return []

    def histograms() -> Figure:
        return plot_weight_histograms(layer_weights(run.checkpoint["model"]), title=run.heading)

    def matrices() -> Figure:
        return plot_weight_matrices(layer_weights(run.checkpoint["model"]), title=run.heading)

    return [FigureJob("weight_histograms", histograms), FigureJob("weight_matrices", matrices)]
