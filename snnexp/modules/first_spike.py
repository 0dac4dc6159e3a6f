"""torch.nn.Module shells around the exact first-spike math (what a notebook user imports), and
:class:`SteppedNetwork`, the same weights evaluated with the exact-propagator stepped simulator
(the published code's ``use_forward_integrator``; evaluation only: training always uses the
exact times and their exact gradients).

>>> layer = FirstSpikeLayer(4, 120, bias_times=[0.9])
>>> hidden_times = layer(input_times)        # (batch, 4) -> (batch, 120), +inf = no spike
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from snnexp.functional.cuba_exact import simulate_network
from snnexp.functional.event.dt import first_spike_dt
from snnexp.functional.event.et import first_spike_et
from snnexp.functional.neuron import DEFAULT_NEURON, NeuronParams

SpikeFunction = Callable[[torch.Tensor, torch.Tensor, NeuronParams, "float | None"], torch.Tensor]

FIRST_SPIKE_FUNCTIONS: dict[str, SpikeFunction] = {
    "first_spike_et": first_spike_et,
    "first_spike_dt": first_spike_dt,
}


class FirstSpikeLayer(nn.Module):
    """A layer of current-based LIF neurons that fire (at most) once, timed exactly.

    ``weight`` has shape (n_inputs + n_bias, n_outputs): bias spikes are extra inputs at fixed
    times (``bias_times``), appended after the regular inputs, as in the published code.
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        params: NeuronParams = DEFAULT_NEURON,
        bias_times: Sequence[float] = (),
        rule: str = "first_spike_et",
        max_dw_norm: float | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        if rule not in FIRST_SPIKE_FUNCTIONS:
            raise ValueError(
                f"unknown first-spike rule {rule!r}; available: {', '.join(FIRST_SPIKE_FUNCTIONS)}"
            )
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.params = params
        self.rule = rule
        self.max_dw_norm = max_dw_norm
        self.weight = nn.Parameter(torch.zeros(n_inputs + len(bias_times), n_outputs, dtype=dtype))
        self.register_buffer("bias_times", torch.tensor(list(bias_times), dtype=dtype))

    def reset_parameters(
        self, mean: float, std: float, generator: torch.Generator | None = None
    ) -> None:
        """Draw the weights from N(mean, std^2)."""
        with torch.no_grad():
            self.weight.normal_(mean, std, generator=generator)

    def forward(self, input_times: torch.Tensor) -> torch.Tensor:
        """(batch, n_inputs) input spike times -> (batch, n_outputs) first output spike times."""
        if self.bias_times.numel():
            bias = self.bias_times.to(input_times.dtype).expand(input_times.shape[0], -1)
            input_times = torch.cat([input_times, bias], dim=1)
        return FIRST_SPIKE_FUNCTIONS[self.rule](
            input_times, self.weight, self.params, self.max_dw_norm
        )

    def extra_repr(self) -> str:
        return (
            f"n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, "
            f"n_bias={self.bias_times.numel()}, "
            f"rule={self.rule}, {self.params}"
        )


class FirstSpikeNetwork(nn.Module):
    """A feed-forward stack of :class:`FirstSpikeLayer`; returns label and hidden spike times."""

    def __init__(self, layers: Sequence[FirstSpikeLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, input_times: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Input spike times -> (label-layer times, [hidden-layer times, ...])."""
        hidden: list[torch.Tensor] = []
        times = input_times
        for layer in self.layers:
            times = layer(times)
            hidden.append(times)
        return hidden.pop(), hidden


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
