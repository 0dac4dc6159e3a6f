"""Evaluate a first-spike network with the time-stepped simulator (the published code's
``use_forward_integrator``).

:class:`SteppedNetwork` wraps a trained :class:`~snnexp.layers.FirstSpikeNetwork` and returns
the same (label times, [hidden times]) from :func:`snnexp.neurons.stepped.simulate_network`
instead of the exact closed form, so every evaluation routine accepts it. It is for evaluation
only: training always uses the exact times and their exact gradients.
"""

from __future__ import annotations

import torch
from torch import nn

from snnexp.layers import FirstSpikeNetwork
from snnexp.neurons.stepped import simulate_network


class SteppedNetwork(nn.Module):
    """The weights of ``network`` simulated in steps of ``dt`` over [0, sim_time]."""

    def __init__(self, network: FirstSpikeNetwork, dt: float, sim_time: float) -> None:
        super().__init__()
        if not 0 < dt < sim_time:
            raise ValueError(f"need 0 < dt < sim_time, got dt={dt}, sim_time={sim_time}")
        self.network = network
        self.dt = dt
        self.sim_time = sim_time

    @torch.no_grad()
    def forward(self, input_times: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Input spike times -> (label-layer times, [hidden-layer times, ...]), +inf = no spike."""
        layers = self.network.layers
        return simulate_network(
            input_times,
            [layer.weight for layer in layers],
            [layer.bias_times for layer in layers],
            [layer.params for layer in layers],
            self.dt,
            self.sim_time,
        )

    def extra_repr(self) -> str:
        return f"dt={self.dt}, sim_time={self.sim_time}"
