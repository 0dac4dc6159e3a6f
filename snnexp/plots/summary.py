"""One-page summary of a savepoint: the key panels and the config's essentials as a caption."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from snnexp.config import ANALOG_RULES, TIME_STEPPED_RULES, steps_of
from snnexp.plots.comparison import panels
from snnexp.plots.confusion import (
    accuracy_summary,
    draw_confusion,
    draw_per_class_accuracy,
)
from snnexp.plots.curves import draw_score
from snnexp.plots.io import config_value, label_outputs
from snnexp.plots.run import NO_SPIKE_LABEL, OUTPUT_TIME_LABEL, SPLIT_NAMES, FigureJob, Run
from snnexp.plots.spike_times import draw_output_times
from snnexp.plots.style import PAGE_WIDTH, styled
from snnexp.plots.yin_yang import draw_yin_yang_map

CAPTION_WIDTH = 130  # characters per caption line at the page width


def config_caption(config: dict[str, Any], accuracies: dict[str, float]) -> str:
    """The essentials of a run in one paragraph: data, network, neuron, learning, training and
    the savepoint's accuracies (``accuracies``: split -> fraction)."""
    value = config_value
    sizes = [value(config, "model.n_inputs", "?"), *value(config, "model.layer_sizes", [])]
    rule = value(config, "learning.rule", "?")
    time_stepped = rule in TIME_STEPPED_RULES
    if rule in ANALOG_RULES:
        neurons = ["ReLU units"]
    elif time_stepped:
        neurons = _time_stepped_neurons(config)
    else:
        neurons = _first_spike_neurons(config)
    parts = [
        f"dataset {value(config, 'dataset.name', '?')}",
        _network_text(value(config, "model.blocks", []) or [], sizes),
        f"rule {rule}",
        *neurons,
        f"loss {value(config, 'learning.loss.type', '?')}",
        f"{value(config, 'learning.optimizer.type', '?')} "
        f"lr {value(config, 'learning.optimizer.lr', '?')}"
        f" ({value(config, 'learning.lr_scheduler.type', 'no scheduler')})",
        f"{value(config, 'training.epochs', '?')} epochs, "
        f"batch {value(config, 'training.batch_size', '?')}",
        *_rewiring_essentials(config),
        f"seeds torch {value(config, 'training.seeds.torch', '?')} / "
        f"numpy {value(config, 'training.seeds.numpy', '?')}",
    ]
    scores = ", ".join(f"{split} {100 * acc:.2f} %" for split, acc in accuracies.items())
    if scores:
        parts.append(f"accuracy: {scores}")
    return "; ".join(parts) + "."


def _first_spike_neurons(config: dict[str, Any]) -> list[str]:
    """Time constants, threshold and weight bumping of a first-spike run."""
    value = config_value
    bumping = "on" if value(config, "training.weight_bumping.enabled") else "off"
    return [
        f"tau_syn {value(config, 'model.neuron.tau_syn', '?')}, "
        f"tau_mem {value(config, 'model.neuron.tau_mem', '?')}, "
        f"threshold {value(config, 'model.neuron.threshold', '?')}",
        f"weight bumping {bumping}",
    ]


def _network_text(blocks: list[Any], sizes: list[Any]) -> str:
    """'network 4-120-3' for a stack; for a graph of blocks its blocks' names (or types) in
    config order: 'network conv1 > pool1 > ...'."""
    if not blocks:
        return "network " + "-".join(str(size) for size in sizes)
    names = [
        str(block.get("name") or block.get("type", "?")) if isinstance(block, dict) else "?"
        for block in blocks
    ]
    return "network " + " > ".join(names)


def _time_stepped_neurons(config: dict[str, Any]) -> list[str]:
    """Neuron model, time grid, encoding, read-out and surrogate of a time-stepped run."""
    value = config_value
    dt, sim_time = value(config, "model.dt", 1.0), value(config, "model.sim_time", 0.0)
    encoding = value(config, "dataset.encoding.type", "?")
    if encoding == "latency" and value(config, "dataset.encoding.interpolate"):
        encoding = "interpolated latency"
    return [
        f"{value(config, 'model.neuron.type', '?')} neurons, "
        f"tau_mem {value(config, 'model.neuron.tau_mem', '?')}, "
        f"threshold {value(config, 'model.neuron.threshold', '?')}",
        f"dt {dt}, {steps_of(sim_time, dt)} steps",
        f"{encoding} encoding",
        f"read-out {value(config, 'model.readout', '?')}",
        f"surrogate {value(config, 'learning.surrogate.type', '?')}",
    ]


def _rewiring_essentials(config: dict[str, Any]) -> list[str]:
    """DEEP R's budget and signs, when the run rewires."""
    rewiring = config_value(config, "learning.rewiring")
    if not isinstance(rewiring, dict) or rewiring.get("connectivity") is None:
        return []
    return [
        f"DEEP R {100 * rewiring.get('connectivity', 0):.0f} % connectivity "
        f"({rewiring.get('scope', '?')} budget, {rewiring.get('signs', '?')} signs)"
    ]


def plot_summary(
    history: dict[str, np.ndarray],
    matrix: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    class_names: Sequence[str],
    caption: str,
    *,
    split_name: str,
    yin_yang: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    title: str | None = None,
    quantity: str = "output spike times",
    ylabel: str = OUTPUT_TIME_LABEL,
    undecided: str = NO_SPIKE_LABEL,
) -> Figure:
    """Four panels: (a) accuracy per epoch, (b) confusion matrix, (c) output spike times by
    true class, (d) the Yin-Yang map (``yin_yang`` = samples, labels, predictions) or the
    per-class accuracy; ``caption`` below them."""
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 6.6), layout="constrained")
        panels, caption_fig = fig.subfigures(2, 1, height_ratios=[1.0, 0.09])
        (ax_a, ax_b), (ax_c, ax_d) = panels.subplots(2, 2)
        if len(history["epoch"]):
            draw_score(ax_a, history)
            ax_a.legend(loc="lower right")
        ax_a.set_title("(a) accuracy per epoch", fontsize="small", loc="left")
        draw_confusion(ax_b, matrix, class_names, compact=True, undecided=undecided)
        ax_b.set_title(
            f"(b) {split_name}: {accuracy_summary(matrix)}", fontsize="small", loc="left"
        )
        draw_output_times(ax_c, mean, std, class_names, ylabel=ylabel)
        ax_c.set_title(f"(c) {quantity}, {split_name}", fontsize="small", loc="left")
        if yin_yang is not None:
            draw_yin_yang_map(ax_d, *yin_yang, class_names, legend=False)
            ax_d.set_title(f"(d) predicted class, {split_name}", fontsize="small", loc="left")
        else:
            overall = draw_per_class_accuracy(ax_d, matrix, class_names)
            ax_d.set_title(
                f"(d) accuracy per class, {split_name} (dashed: all, {overall:.1f} %)",
                fontsize="small",
                loc="left",
            )
        caption_fig.text(
            0.01,
            0.95,
            textwrap.fill(caption, CAPTION_WIDTH),
            va="top",
            ha="left",
            fontsize="small",
        )
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """``summary``: one page of the main split, config essentials in the caption."""
    split = run.main_split
    if split is None:
        return []
    outputs = run.outputs[split]

    def summary() -> Figure:
        page = panels(run.epoch or 0, outputs)
        accuracies = {
            s: float(np.mean(o["predictions"] == o["labels"])) for s, o in run.outputs.items()
        }
        yin_yang = None
        if run.dataset == "yin_yang" and "samples" in outputs:
            yin_yang = (outputs["samples"], outputs["labels"], outputs["predictions"])
        return plot_summary(
            run.history,
            page.matrix,
            page.mean,
            page.std,
            run.names(label_outputs(outputs)[1].shape[1]),
            config_caption(run.config, accuracies),
            split_name=SPLIT_NAMES[split],
            yin_yang=yin_yang,
            title=run.heading,
            quantity="read-out scores" if run.scores else "output spike times",
            ylabel=run.output_label,
            undecided=run.undecided_label,
        )

    return [FigureJob("summary", summary)]
