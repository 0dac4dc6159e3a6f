"""Activity of time-stepped (BPTT) networks: spike rasters, membrane traces, firing rates.

Rasters and traces read the ``trace_*`` arrays a savepoint stores for a few test samples
(``(steps, samples, neurons)``: ``trace_input``, ``trace_spikes_<k>``, ``trace_membrane_<k>``,
``trace_threshold_<k>`` for adaptive layers, ``trace_output_<k>`` for a membrane read-out);
firing rates read the hidden layers' spike counts of a whole split (``hidden_counts_<k>``, or
their means ``mean_hidden_counts_<k>`` for layers too large to save whole, e.g. convolutions).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from snnexp.config import steps_of
from snnexp.plots.run import FigureJob, Run
from snnexp.plots.style import OKABE_ITO, PAGE_WIDTH, styled

N_TRACE_NEURONS = 4
N_RATE_BINS = 40


def trace_layers(outputs: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """(panel name, spikes ``(steps, samples, n)``) of the input and of every layer that
    spikes, in order."""
    layers = [("input", outputs["trace_input"])] if "trace_input" in outputs else []
    k = 0
    while f"trace_membrane_{k}" in outputs:
        if f"trace_spikes_{k}" in outputs:
            layers.append((f"layer {k + 1}", outputs[f"trace_spikes_{k}"]))
        k += 1
    return layers


def plot_spike_raster(
    layers: Sequence[tuple[str, np.ndarray]],
    dt: float,
    *,
    sample: int = 0,
    label: str | None = None,
    title: str | None = None,
) -> Figure:
    """One raster per population (input, hidden layers, label layer) for one sample: a dot
    per spike at (time, neuron)."""
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 1.0 + 1.4 * len(layers)), layout="constrained")
        axes = np.atleast_1d(fig.subplots(len(layers), 1, sharex=True))
        for ax, (name, spikes) in zip(axes, layers, strict=True):
            steps, neurons = np.nonzero(spikes[:, sample, :])
            ax.scatter(steps * dt, neurons, s=8, marker="|", color="black", linewidths=0.8)
            ax.set_ylabel(f"{name}\nneuron")
            ax.set_ylim(-0.5, spikes.shape[2] - 0.5)
            rate = spikes[:, sample, :].mean()
            ax.set_title(
                f"{name}: {rate:.3f} spikes per neuron and step", fontsize="small", loc="left"
            )
        axes[-1].set_xlim(0, layers[0][1].shape[0] * dt)
        axes[-1].set_xlabel("t [model time units]")
        heading = title or ""
        if label is not None:
            heading = f"{heading}, sample of class {label}" if heading else f"class {label}"
        if heading:
            fig.suptitle(heading, fontsize="medium")
    return fig


def plot_membrane_traces(
    outputs: dict[str, np.ndarray],
    dt: float,
    threshold: float,
    *,
    sample: int = 0,
    title: str | None = None,
) -> Figure:
    """Membrane potential of a few neurons of each spiking layer for one sample (the ones that
    spike most in it, so that resets show), with the threshold (the adaptive threshold of alif
    neurons where it moves); a membrane read-out layer shows every neuron."""
    layer_keys = []
    k = 0
    while f"trace_membrane_{k}" in outputs:
        layer_keys.append(k)
        k += 1
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 1.0 + 1.6 * len(layer_keys)), layout="constrained")
        axes = np.atleast_1d(fig.subplots(len(layer_keys), 1, sharex=True))
        for ax, k in zip(axes, layer_keys, strict=True):
            membrane = outputs[f"trace_membrane_{k}"][:, sample, :]
            spiking = f"trace_spikes_{k}" in outputs
            shown = (
                most_active(outputs[f"trace_spikes_{k}"][:, sample, :], N_TRACE_NEURONS)
                if spiking
                else np.arange(membrane.shape[1])
            )
            time = np.arange(membrane.shape[0]) * dt
            adaptive = outputs.get(f"trace_threshold_{k}")
            for position, j in enumerate(shown):
                color = OKABE_ITO[position % len(OKABE_ITO)]
                ax.plot(time, membrane[:, j], color=color, linewidth=0.8, label=f"neuron {j}")
                if adaptive is not None and spiking:
                    ax.plot(
                        time, adaptive[:, sample, j], color=color, linewidth=0.6, linestyle="--"
                    )
            if spiking:
                ax.axhline(threshold, color="0.3", linestyle=":", linewidth=0.8, label="threshold")
            kind = "spiking" if spiking else "read-out (non-spiking)"
            note = ", dashed: adaptive threshold" if adaptive is not None and spiking else ""
            ax.set_title(f"layer {k + 1}, {kind}{note}", fontsize="small", loc="left")
            ax.set_ylabel("membrane v")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small")
        axes[-1].set_xlabel("t [model time units]")
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def most_active(spikes: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` neurons with the most spikes in ``spikes`` ``(steps, n)``, in
    index order; ties go to the lower index."""
    order = np.argsort(-spikes.sum(axis=0), kind="stable")[:count]
    return np.sort(order)


def hidden_counts_or_means(outputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Per hidden layer, in order, its saved spike counts ``(samples, n)``, or for a layer too
    large to save whole (``mean_hidden_counts_<k>``) its mean counts as one row ``(1, n)``."""
    layers = {}
    for key, value in outputs.items():
        for prefix, rows in (("hidden_counts_", value), ("mean_hidden_counts_", value[None])):
            if key.startswith(prefix) and key[len(prefix) :].isdigit():
                layers[int(key[len(prefix) :])] = rows
    return [layers[k] for k in sorted(layers)]


def firing_rates(counts: np.ndarray, steps: int) -> np.ndarray:
    """Mean spikes per step of each neuron over the samples: counts ``(samples, n)`` -> (n,)."""
    return np.asarray(counts, dtype=np.float64).mean(axis=0) / steps


def plot_firing_rates(
    layers: Sequence[np.ndarray], steps: int, *, title: str | None = None
) -> Figure:
    """Histogram per hidden layer of its neurons' firing rates (spikes per step, averaged over
    the split), with the share of silent neurons."""
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 2.4), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(layers)))
        for k, (ax, counts) in enumerate(zip(axes, layers, strict=True)):
            rates = firing_rates(counts, steps)
            high = max(float(rates.max()), 1e-3)
            ax.hist(rates, bins=np.linspace(0.0, high, N_RATE_BINS + 1), color=OKABE_ITO[0])
            silent = 100.0 * float((rates == 0).mean())
            ax.set_title(
                f"hidden layer {k + 1}: mean {rates.mean():.3f}, {silent:.0f} % silent",
                fontsize="small",
                loc="left",
            )
            ax.set_xlabel("firing rate [spikes per step]")
            ax.set_ylabel("neurons")
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """Time-stepped runs: ``firing_rates_<split>`` of every split with hidden counts, and
    ``spike_raster`` and ``membrane_traces`` of the split that traced a sample."""
    if not run.time_stepped:
        return []
    dt = run.dt
    steps = steps_of(float(run.value("model.sim_time", 1.0)), dt)
    threshold = float(run.value("model.neuron.threshold", 1.0))
    found = []
    for split, outputs in run.outputs.items():
        counts = hidden_counts_or_means(outputs)
        if counts:
            found.append(
                FigureJob(
                    f"firing_rates_{split}",
                    functools.partial(
                        plot_firing_rates, counts, steps, title=run.split_title(split)
                    ),
                )
            )
        layers = trace_layers(outputs)
        if layers:
            label = run.traced_label(outputs)
            found += [
                FigureJob(
                    "spike_raster",
                    functools.partial(
                        plot_spike_raster, layers, dt, label=label, title=run.heading
                    ),
                ),
                FigureJob(
                    "membrane_traces",
                    functools.partial(
                        plot_membrane_traces, outputs, dt, threshold, title=run.heading
                    ),
                ),
            ]
    return found
