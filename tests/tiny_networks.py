"""A small time-stepped network for the tests: recurrent synaptic hidden layer, leaky outputs."""

from __future__ import annotations

import torch

from snnexp.data.encoding import SpikeEncoder
from snnexp.modules.neurons import SpikingNeurons
from snnexp.modules.stepped_layer import SpikingLayer
from snnexp.modules.time_stepped import TimeSteppedNetwork


def tiny_network(
    steps: int, chunk_steps: int, recurrent: bool = True, hidden: int = 8, seed: int = 2
) -> TimeSteppedNetwork:
    """5 inputs -> ``hidden`` synaptic neurons (delay 1, a bias spike at 0.3) -> 3 leaky ones,
    float64, dt 0.1, latency-coded inputs; weights from N(0.8, 1) after torch.manual_seed(seed)
    (the global generator: the tests draw their inputs from it next)."""
    torch.manual_seed(seed)
    layers = [
        SpikingLayer(
            5,
            SpikingNeurons(
                hidden, "synaptic", dt=0.1, tau_mem=1.0, tau_syn=0.5, dtype=torch.float64
            ),
            recurrent=recurrent,
            delay=1,
            bias_times=[0.3],
        ),
        SpikingLayer(hidden, SpikingNeurons(3, "leaky", dt=0.1, tau_mem=1.0, dtype=torch.float64)),
    ]
    for layer in layers:
        layer.reset_parameters("normal", 0.8, 1.0)
    encoder = SpikeEncoder("latency", dt=0.1)
    return TimeSteppedNetwork(layers, encoder, steps, chunk_steps=chunk_steps)
