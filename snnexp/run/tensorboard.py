"""TensorBoard statistics of a run (``training.tensorboard: true``, ``--tensorboard``; optional
dependency: ``pip install 'snnexp[tensorboard]'``), written to ``<run>/tensorboard/``.

Per epoch (step = the epoch): ``loss/<split>``, ``accuracy/<split>`` and ``lr`` from the history
row; a histogram ``weights/<parameter>`` of every trained parameter; and for every spiking
layer, from a simulation of the first :data:`STATISTICS_SAMPLES` validation samples:
``spikes/<layer>/count_mean`` and ``count_var`` (spikes per sample of the whole layer) with the
histogram ``spikes/<layer>/counts``, and ``spikes/<layer>/first_time_mean`` and
``first_time_var`` (first spike time of each neuron that fired, in units of the time step dt
times the step) with the histogram ``spikes/<layer>/first_times``. Exact first-spike networks
give their hidden spike times directly; an ANN has no spikes. A converted run
(``snnexp eval RUN --tensorboard``) adds ``conversion/ann_accuracy_<split>`` and
``conversion/snn_accuracy_<split>`` side by side, and the SNN's accuracy after each step as
``conversion/snn_accuracy_by_step_<split>`` (step = simulated steps).

Open with ``tensorboard --logdir experiment_results``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

from snnexp.errors import SnnexpError
from snnexp.modules.first_spike import FirstSpikeNetwork
from snnexp.modules.modes import evaluation_mode
from snnexp.modules.readout import SteppedReadoutNetwork

TENSORBOARD_FOLDER = "tensorboard"
STATISTICS_SAMPLES = 256
"""Validation samples simulated for the spike statistics of an epoch."""
RECORD_BATCH = 16
"""Samples per recorded simulation (every step of every neuron is kept)."""


def writer_class() -> type:
    """torch's SummaryWriter; a clear error where tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise SnnexpError(
            "TensorBoard statistics (training.tensorboard, --tensorboard) need the optional "
            "dependency tensorboard: pip install 'snnexp[tensorboard]' (or pip install "
            "tensorboard), or leave them off"
        ) from error
    return SummaryWriter


@dataclass
class LayerSpikes:
    """Spikes of one layer over some samples: per sample ``(n,)`` and the first spike time of
    every neuron that fired (all samples together)."""

    counts: torch.Tensor
    first_times: torch.Tensor


@torch.no_grad()
def spike_statistics(
    model: torch.nn.Module, input_times: torch.Tensor, dt: float
) -> dict[str, LayerSpikes]:
    """Spike counts per sample and first spike times of every spiking layer of ``model``
    (none for an ANN)."""
    if isinstance(model, FirstSpikeNetwork):
        return _exact_statistics(model, input_times)
    if not isinstance(model, SteppedReadoutNetwork):
        return {}
    names = getattr(model, "neuron_blocks", None)
    parts: dict[str, list[LayerSpikes]] = {}
    for start in range(0, len(input_times), RECORD_BATCH):
        recorded = model.record(input_times[start : start + RECORD_BATCH])
        k = 0
        while f"membrane_{k}" in recorded:
            spikes = recorded.get(f"spikes_{k}")
            if spikes is not None:
                name = names[k] if names else f"layer_{k + 1}"
                parts.setdefault(name, []).append(_layer_spikes(spikes, dt))
            k += 1
    return {
        name: LayerSpikes(
            torch.cat([p.counts for p in layer]), torch.cat([p.first_times for p in layer])
        )
        for name, layer in parts.items()
    }


def _layer_spikes(spikes: torch.Tensor, dt: float) -> LayerSpikes:
    """``spikes`` ``(steps, batch, n)`` -> counts per sample, first spike times of the fired."""
    counts = spikes.sum(dim=(0, 2)).double().cpu()
    fired = spikes.sum(0) > 0
    first_step = spikes.argmax(0)
    times = (first_step[fired].double() * dt).cpu()
    return LayerSpikes(counts, times)


def _exact_statistics(
    model: FirstSpikeNetwork, input_times: torch.Tensor
) -> dict[str, LayerSpikes]:
    """First-spike layers fire at most once per neuron: their hidden outputs are the times
    (inf: no spike)."""
    with evaluation_mode(model):
        _, hidden = model(input_times)
    stats = {}
    for k, times in enumerate(hidden):
        finite = torch.isfinite(times)
        stats[f"layer_{k + 1}"] = LayerSpikes(
            finite.sum(1).double().cpu(), times[finite].double().cpu()
        )
    return stats


class TensorBoardLog:
    """The statistics of one run, epoch by epoch (a context manager that closes the writer)."""

    def __init__(self, run_dir: Path) -> None:
        self.writer = writer_class()(log_dir=str(run_dir / TENSORBOARD_FOLDER))

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()

    def epoch(
        self,
        epoch: int,
        row: Mapping[str, float],
        model: torch.nn.Module,
        input_times: torch.Tensor | None,
        dt: float,
    ) -> None:
        """Everything of one epoch: the history row, the weights, the spikes on
        ``input_times`` (None: no spike statistics)."""
        self.scalars(epoch, row)
        for name, parameter in model.named_parameters():
            values = parameter.detach().cpu().double()
            finite = values[torch.isfinite(values)]
            if finite.numel():
                self.writer.add_histogram(f"weights/{name}", finite, epoch)
        if input_times is not None:
            self.spikes(epoch, spike_statistics(model, input_times, dt))
        self.writer.flush()

    def scalars(self, epoch: int, row: Mapping[str, float]) -> None:
        """Loss and accuracy of the splits a history row has (not NaN), and the lr."""
        for split in ("train", "val"):
            for metric in ("loss", "accuracy"):
                value = row.get(f"{split}_{metric}")
                if value is not None and value == value:
                    self.writer.add_scalar(f"{metric}/{split}", value, epoch)
        if "lr" in row:
            self.writer.add_scalar("lr", row["lr"], epoch)

    def spikes(self, step: int, layers: Mapping[str, LayerSpikes]) -> None:
        """Mean and variance of the spike counts and first spike times, with histograms."""
        for name, layer in layers.items():
            prefix = f"spikes/{name}"
            self.writer.add_scalar(f"{prefix}/count_mean", float(layer.counts.mean()), step)
            self.writer.add_scalar(
                f"{prefix}/count_var", float(layer.counts.var(unbiased=False)), step
            )
            self.writer.add_histogram(f"{prefix}/counts", layer.counts, step)
            if layer.first_times.numel():
                times = layer.first_times
                self.writer.add_scalar(f"{prefix}/first_time_mean", float(times.mean()), step)
                self.writer.add_scalar(
                    f"{prefix}/first_time_var", float(times.var(unbiased=False)), step
                )
                self.writer.add_histogram(f"{prefix}/first_times", times, step)

    def conversion(self, summary: Mapping[str, Any]) -> None:
        """ANN and SNN accuracy of a converted run side by side, and the SNN's by step."""
        for split, snn in summary["snn"].items():
            self.writer.add_scalar(
                f"conversion/ann_accuracy_{split}", summary["ann"]["accuracy"][split], 0
            )
            self.writer.add_scalar(f"conversion/snn_accuracy_{split}", snn["accuracy"], 0)
            for step, accuracy in enumerate(snn["accuracy_by_step"], start=1):
                self.writer.add_scalar(f"conversion/snn_accuracy_by_step_{split}", accuracy, step)
        self.writer.flush()


def log_savepoint(
    run_dir: Path, epoch_dir: Path, data_dir: Path | None = None, history: bool = True
) -> Path:
    """The statistics of a saved savepoint (``snnexp eval RUN --tensorboard``): with
    ``history`` the history up to it, its weights, the spikes of its network on validation
    samples and, for a converted run, ANN and SNN accuracy. Returns the TensorBoard folder."""
    from snnexp.conversion.summary import read_conversion
    from snnexp.data import load_split
    from snnexp.dtypes import DTYPES
    from snnexp.run.inference import load_saved_network
    from snnexp.run.results import history_rows, load_checkpoint

    saved = load_saved_network(epoch_dir)
    rows = history_rows(load_checkpoint(saved.epoch_dir)["history"])
    split = load_split(saved.cfg.dataset, "val", data_dir)
    inputs = split.input_times[:STATISTICS_SAMPLES].to(saved.device, DTYPES[saved.cfg.model.dtype])
    with TensorBoardLog(run_dir) as log:
        for row in rows[:-1] if history else []:
            log.scalars(int(row["epoch"]), row)
        log.epoch(saved.epoch, rows[-1], saved.model, inputs, saved.cfg.model.dt)
        summary = read_conversion(run_dir)
        if summary is not None and history:
            log.conversion(summary)
    return run_dir / TENSORBOARD_FOLDER
