"""A layer of a time-stepped stack: feed-forward (optionally delayed) and recurrent weights into
a population of :class:`~snnexp.modules.neurons.SpikingNeurons`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from snnexp.data.encoding import latency_spike_train
from snnexp.functional.stepped.base import (
    NeuronState,
    integrator_step,
    neuron_step,
    threshold_of,
)
from snnexp.modules.neurons import SpikingNeurons
from snnexp.modules.weight_products import WeightProducts


class LayerState(NamedTuple):
    """A layer's neuron state and the delayed input currents still to arrive."""

    neurons: NeuronState
    pending: torch.Tensor | None


class SpikingLayer(nn.Module, WeightProducts):
    """Weights plus neurons: input spikes ``(steps, batch, n_in)`` -> spikes (or, for a
    non-spiking read-out layer, membrane potentials) ``(steps, batch, n_out)``.

    The current into neuron j at step t is

        x_t = sum_i W_ij s_{t - d, i} + sum_k R_kj z_{t-1, k}     (R: recurrent weights)

    with feed-forward delay d steps. ``weight`` is ``(n_in + n_bias, n_out)`` as in the
    first-spike layers: bias spikes are extra inputs that fire once, at ``bias_times`` (in step
    floor(t / dt)). The feed-forward part is one matrix product over all steps.
    """

    def __init__(
        self,
        n_inputs: int,
        neurons: SpikingNeurons,
        recurrent: bool = False,
        delay: int = 0,
        spiking: bool = True,
        bias_times: Sequence[float] = (),
    ) -> None:
        super().__init__()
        self.n_inputs = n_inputs
        self.n_outputs = neurons.size
        self.neurons = neurons
        self.delay = delay
        self.spiking = spiking
        dtype = neurons.tau_mem.dtype
        self.register_buffer("bias_times", torch.tensor(list(bias_times), dtype=dtype))
        n_rows = n_inputs + len(bias_times)
        self.weight = nn.Parameter(torch.zeros(n_rows, neurons.size, dtype=dtype))
        self.recurrent_weight = (
            nn.Parameter(torch.zeros(neurons.size, neurons.size, dtype=dtype))
            if recurrent
            else None
        )

    def reset_parameters(
        self, init: str, mean: float, std: float, generator: torch.Generator | None = None
    ) -> None:
        """Feed-forward weights from N(mean, std^2) (``normal``) or U(+-1/sqrt(n_in))
        (``uniform_fan_in``); recurrent weights from U(+-1/sqrt(n_out)), no self-connections."""
        with torch.no_grad():
            if init == "normal":
                self.weight.normal_(mean, std, generator=generator)
            else:
                bound = 1 / math.sqrt(self.n_inputs)
                self.weight.uniform_(-bound, bound, generator=generator)
            if self.recurrent_weight is not None:
                bound = 1 / math.sqrt(self.n_outputs)
                self.recurrent_weight.uniform_(-bound, bound, generator=generator)
                self.recurrent_weight.fill_diagonal_(0.0)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> LayerState:
        """Resting neurons, no delayed input in flight."""
        pending = None
        if self.delay:
            pending = torch.zeros((self.delay, batch, self.n_outputs), device=device, dtype=dtype)
        return LayerState(self.neurons.initial_state(batch, device, dtype), pending)

    def run(
        self, inputs: torch.Tensor, state: LayerState, first_step: int = 0, record: bool = False
    ) -> tuple[torch.Tensor, LayerState, dict[str, torch.Tensor]]:
        """Simulate the steps of ``inputs`` (the first being step ``first_step``); returns the
        outputs, the state after the last step and, with ``record``, the membrane (and
        adaptation) traces."""
        currents = self.product(inputs, self.weight[: self.n_inputs])
        if self.bias_times.numel():
            bias = latency_spike_train(
                self.bias_times.unsqueeze(0), self.neurons.dt, first_step, len(inputs)
            )
            currents = currents + self.product(bias, self.weight[self.n_inputs :])
        pending = state.pending
        if pending is not None:
            joined = torch.cat([pending, currents])
            currents, pending = joined[: len(inputs)], joined[len(inputs) :]
        params = self.neurons.step_params()
        neurons = state.neurons
        if self.recurrent_weight is None and self.spiking and not record:
            fused = self.neurons.all_steps(currents, neurons, params)
            if fused is not None:
                return fused[0], LayerState(fused[1], pending), {}
        outputs, membrane, adaptation = [], [], []
        for current in currents:
            if self.recurrent_weight is not None:
                current = current + self.product(neurons.z, self.recurrent_weight)
            if self.spiking:
                neurons = neuron_step(current, neurons, params, self.neurons.surrogate)
                outputs.append(neurons.z)
            else:
                neurons = neurons._replace(v=integrator_step(current, neurons.v, params.mem_decay))
                outputs.append(neurons.v)
            if record:
                membrane.append(neurons.v)
                if neurons.a is not None:
                    adaptation.append(threshold_of(neurons, params))
        trace = {}
        if record:
            trace["membrane"] = torch.stack(membrane)
            if adaptation:
                trace["threshold"] = torch.stack(adaptation)
        return torch.stack(outputs), LayerState(neurons, pending), trace

    def extra_repr(self) -> str:
        recurrent = self.recurrent_weight is not None
        return (
            f"n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, recurrent={recurrent}, "
            f"delay={self.delay}, spiking={self.spiking}"
        )
