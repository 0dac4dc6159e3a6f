"""Feature maps of a convolutional graph of blocks: for every spiking neurons block whose
output is an image (channels, height, width), the spikes of a traced test sample per channel
over time (a feature-map raster) and, for the first channels, where in the map they fell.

Reads ``trace_spikes_<k>`` (``(steps, samples, C H W)``, k counting the neurons blocks in config
order) and the block shapes of the run's graph (rebuilt from its config).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from snnexp.graph.spec import GraphSpec
from snnexp.plots.run import FigureJob, Run
from snnexp.plots.style import PAGE_WIDTH, styled

N_MAP_CHANNELS = 6
"""Channels whose spatial spike counts are drawn per block."""


class FeatureMaps(NamedTuple):
    """The traced spikes of one image-shaped neurons block, ``(steps, samples, C, H, W)``."""

    block: str
    spikes: np.ndarray


def feature_map_blocks(graph: GraphSpec, outputs: dict[str, np.ndarray]) -> list[FeatureMaps]:
    """The traced spikes of every spiking neurons block with a 3-d output shape, reshaped to
    their feature maps, in config order."""
    neuron_blocks = [name for name, block in graph.blocks.items() if block.type == "neurons"]
    found = []
    for k, name in enumerate(neuron_blocks):
        shape = graph.blocks[name].out_shape
        key = f"trace_spikes_{k}"
        if len(shape) == 3 and key in outputs:
            spikes = outputs[key]
            found.append(FeatureMaps(name, spikes.reshape(*spikes.shape[:2], *shape)))
    return found


def channel_raster(spikes: np.ndarray, sample: int = 0) -> np.ndarray:
    """Fraction of each channel's neurons that spike in each step, ``(channels, steps)``."""
    return spikes[:, sample].mean(axis=(2, 3)).T


def plot_feature_maps(
    blocks: Sequence[FeatureMaps],
    dt: float,
    *,
    sample: int = 0,
    label: str | None = None,
    title: str | None = None,
) -> Figure:
    """One row per block: the feature-map raster (channel x time, the fraction of the channel's
    neurons spiking per step) and the spike counts over the trace of its first channels."""
    n_cols = 1 + N_MAP_CHANNELS
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 0.6 + 1.5 * len(blocks)), layout="constrained")
        grid = fig.add_gridspec(len(blocks), n_cols, width_ratios=[4] + [1] * N_MAP_CHANNELS)
        for row, (name, spikes) in enumerate(blocks):
            raster = channel_raster(spikes, sample)
            ax = fig.add_subplot(grid[row, 0])
            steps = raster.shape[1]
            image = ax.imshow(
                raster,
                aspect="auto",
                interpolation="nearest",
                cmap="Greys",
                extent=(0, steps * dt, raster.shape[0] - 0.5, -0.5),
                vmin=0,
            )
            ax.grid(False)
            fig.colorbar(image, ax=ax, fraction=0.05, pad=0.01)
            ax.set_ylabel(f"{name}\nchannel")
            rate = spikes[:, sample].mean()
            ax.set_title(
                f"{name}: {rate:.3f} spikes per neuron and step", fontsize="small", loc="left"
            )
            if row == len(blocks) - 1:
                ax.set_xlabel("t [model time units]")
            counts = spikes[:, sample].sum(axis=0)
            top = max(float(counts.max()), 1.0)
            for c in range(min(N_MAP_CHANNELS, counts.shape[0])):
                ax_map = fig.add_subplot(grid[row, 1 + c])
                ax_map.imshow(counts[c], cmap="viridis", vmin=0, vmax=top, interpolation="nearest")
                ax_map.set_xticks([])
                ax_map.set_yticks([])
                ax_map.set_title(f"ch {c}", fontsize="x-small")
        heading = title or "feature maps"
        if label is not None:
            heading = f"{heading}, sample of class {label}"
        fig.suptitle(heading, fontsize="medium")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """Conv graphs of blocks whose test split traced a sample: ``feature_maps``."""
    outputs = run.outputs.get("test", {})
    if not run.value("model.blocks") or "trace_labels" not in outputs:
        return []
    blocks = feature_map_blocks(run.graph, outputs)
    if not blocks:
        return []
    figure = functools.partial(
        plot_feature_maps, blocks, run.dt, label=run.traced_label(outputs), title=run.heading
    )
    return [FigureJob("feature_maps", figure)]
