"""The BPTT stack: :class:`TimeSteppedNetwork` runs a stack of spiking layers
(:class:`~snnexp.modules.stepped_layer.SpikingLayer`) from latency-coded input times, in chunks
of steps, to a read-out per class."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from snnexp.data.encoding import SpikeEncoder
from snnexp.modules.readout import CHUNK_STEPS, SteppedReadoutNetwork
from snnexp.modules.stepped_layer import SpikingLayer


class TimeSteppedNetwork(SteppedReadoutNetwork):
    """A stack of :class:`SpikingLayer` simulated for ``steps`` steps from input spike times.

    ``forward`` returns the read-out scores ``(batch, classes)`` and the spike counts
    ``(batch, n)`` of every hidden layer. Steps are simulated ``CHUNK_STEPS`` at a time (encode,
    then every layer), so that without gradients memory does not grow with ``steps``.
    ``generator`` feeds random encoders during training; without one, a fixed seed is used.
    """

    def __init__(
        self,
        layers: Sequence[SpikingLayer],
        encoder: SpikeEncoder,
        steps: int,
        readout: str = "spike_count",
        readout_steps: int | None = None,
        xi: float = 1.0,
        chunk_steps: int = CHUNK_STEPS,
    ) -> None:
        super().__init__(encoder, steps, readout, readout_steps, xi, chunk_steps)
        self.layers = nn.ModuleList(layers)

    def simulate(
        self, input_times: torch.Tensor, record: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, list[torch.Tensor]]]:
        """Run all steps; returns scores, hidden spike counts and (``record``) full traces:
        ``input`` spikes, per layer ``spikes_k``, ``membrane_k`` and ``threshold_k``."""
        batch, device, dtype = input_times.shape[0], input_times.device, input_times.dtype
        generator = self.input_generator(device)
        states = [layer.initial_state(batch, device, dtype) for layer in self.layers]
        counts = [
            torch.zeros((batch, layer.n_outputs), device=device, dtype=dtype)
            for layer in self.layers[:-1]
        ]
        readout = self.new_readout()
        traces: dict[str, list[torch.Tensor]] = {}
        for first in range(0, self.steps, self.chunk_steps):
            length = min(self.chunk_steps, self.steps - first)
            x = self.encoder(input_times, first, length, generator)
            if record:
                traces.setdefault("input", []).append(x)
            for k, layer in enumerate(self.layers):
                x, states[k], trace = layer.run(x, states[k], first, record)
                if k < len(counts):
                    counts[k] = counts[k] + x.sum(dim=0)
                if record:
                    traces.setdefault(f"{'spikes' if layer.spiking else 'output'}_{k}", []).append(
                        x
                    )
                    for name, values in trace.items():
                        traces.setdefault(f"{name}_{k}", []).append(values)
            readout.add(x, first)
        return readout.scores(), counts, traces
