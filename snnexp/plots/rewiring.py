"""Rewired (DEEP R) runs: active connections and rewiring events per epoch, sign maps."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from snnexp.plots.run import FigureJob, Run
from snnexp.plots.style import OKABE_ITO, PAGE_WIDTH, styled

SIGN_COLORS = ListedColormap([OKABE_ITO[0], "white", OKABE_ITO[3]])
"""inhibitory (blue), dormant (white), excitatory (vermillion)."""
MAX_MAP_SIDE = 400


def matrix_names(state: dict) -> list[str]:
    """Readable names of the rewired matrices of a model state dict, in the order DEEP R keeps
    them: 'layer 1', 'layer 1 recurrent', ..."""
    names = []
    for key, value in state.items():
        *_, index, leaf = key.split(".") if key.count(".") >= 2 else ("", "", key)
        if leaf in ("weight", "recurrent_weight") and np.ndim(value) == 2 and index.isdigit():
            suffix = " recurrent" if leaf == "recurrent_weight" else ""
            names.append(f"layer {int(index) + 1}{suffix}")
    return names


def sign_map(signs: np.ndarray, active: np.ndarray) -> np.ndarray:
    """+1 / -1 for active excitatory / inhibitory synapses, 0 for dormant ones."""
    return np.where(np.asarray(active, dtype=bool), np.sign(signs), 0.0)


def plot_connectivity(history: dict[str, np.ndarray], *, title: str | None = None) -> Figure:
    """Active connections (left) and rewiring events (right) per epoch."""
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 2.4), layout="constrained")
        left, right = fig.subplots(1, 2)
        epochs = history["epoch"]
        left.plot(epochs, history["connections"], color=OKABE_ITO[0], marker="o", markersize=2)
        left.set_xlabel("epoch")
        left.set_ylabel("active connections")
        left.set_title("connectivity (kept at the budget)", fontsize="small", loc="left")
        right.bar(epochs, history["rewirings"], color=OKABE_ITO[1], width=0.9)
        right.set_xlabel("epoch")
        right.set_ylabel("synapses rewired")
        right.set_title("rewiring events per epoch", fontsize="small", loc="left")
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def plot_sign_maps(
    maps: Sequence[np.ndarray], names: Sequence[str], *, title: str | None = None
) -> Figure:
    """One image per rewired matrix (rows: presynaptic, columns: postsynaptic neurons):
    excitatory, inhibitory and dormant synapses; large matrices show their top-left corner."""
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 3.0), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(maps)))
        for ax, matrix, name in zip(axes, maps, names, strict=True):
            shown = matrix[:MAX_MAP_SIDE, :MAX_MAP_SIDE]
            ax.imshow(
                shown, cmap=SIGN_COLORS, vmin=-1, vmax=1, aspect="auto", interpolation="nearest"
            )
            active = matrix != 0
            excitatory = 100.0 * float((matrix > 0).sum()) / max(int(active.sum()), 1)
            cut = " (corner)" if shown.shape != matrix.shape else ""
            ax.set_title(
                f"{name}{cut}: {100 * active.mean():.1f} % active, {excitatory:.0f} % exc.",
                fontsize="small",
                loc="left",
            )
            ax.set_xlabel("postsynaptic neuron")
            ax.set_ylabel("presynaptic neuron")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(False)
        if title:
            fig.suptitle(
                f"{title} (vermillion: excitatory, blue: inhibitory, white: dormant)",
                fontsize="medium",
            )
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """DEEP R runs: ``sign_maps`` (from the checkpoint) and ``connectivity`` (from the
    history)."""
    if run.value("learning.rewiring.connectivity") is None or not run.has_checkpoint:
        return []

    def sign_maps() -> Figure:
        state = run.checkpoint["rewiring"]
        maps = [
            sign_map(np.asarray(s), np.asarray(a))
            for s, a in zip(state["signs"], state["active"], strict=True)
        ]
        return plot_sign_maps(maps, matrix_names(run.checkpoint["model"]), title=run.heading)

    found = [FigureJob("sign_maps", sign_maps)]
    if "connections" in run.history:
        found.append(
            FigureJob(
                "connectivity", functools.partial(plot_connectivity, run.history, title=run.heading)
            )
        )
    return found
