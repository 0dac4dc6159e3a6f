"""The LSNN network of Bellec et al. (2018) as its published code builds it: one recurrent layer
of regular and adaptive neurons with random synaptic delays (:mod:`snnexp.functional.lsnn`) and
a linear read-out of the exponentially filtered spikes, averaged over the last steps."""

from __future__ import annotations

import math

import torch
from torch import nn

from snnexp.data.encoding import SpikeEncoder
from snnexp.functional.lsnn import (
    LSNNConstants,
    lsnn_layer,
    lsnn_layer_readout,
    reduce_spikes,
    window_filter_weights,
)
from snnexp.modules.readout import SteppedReadoutNetwork


class LSNNRecurrentLayer(nn.Module):
    """Input weights ``weight`` ``(n_in, n)`` and recurrent weights ``recurrent_weight``
    ``(n, n)`` (no self-connections) with a fixed random delay of 0 .. n_delays - 1 steps per
    synapse, into ``n`` neurons of which the last ``n_adaptive`` adapt."""

    def __init__(
        self,
        n_inputs: int,
        n: int,
        n_adaptive: int,
        tau_mem: float,
        tau_adapt: float,
        adapt_strength: float,
        threshold: float,
        refractory_steps: int,
        dampening: float,
        n_delays: int,
        dt: float,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        self.n_inputs, self.n_outputs = n_inputs, n
        self.weight = nn.Parameter(torch.zeros(n_inputs, n, dtype=dtype))
        self.recurrent_weight = nn.Parameter(torch.zeros(n, n, dtype=dtype))
        self.register_buffer("delays", torch.zeros(n_inputs, n, dtype=torch.int64))
        self.register_buffer("recurrent_delays", torch.zeros(n, n, dtype=torch.int64))
        beta = torch.zeros(n, dtype=dtype)
        beta[n - n_adaptive :] = adapt_strength
        self.register_buffer("beta", beta)
        self.register_buffer("no_self_connections", 1.0 - torch.eye(n, dtype=dtype))
        self.alpha = math.exp(-dt / tau_mem)
        self.rho = math.exp(-dt / tau_adapt)
        self.threshold = threshold
        self.refractory_steps = refractory_steps
        self.dampening = dampening
        self.n_delays = n_delays

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """LSNN's initialisation without rewiring: W ~ N(0, 1 / n_in), R ~ N(0, 1 / n) with a
        zero diagonal, delays uniform in 0 .. n_delays - 1."""
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / math.sqrt(self.n_inputs), generator=generator)
            self.recurrent_weight.normal_(0.0, 1.0 / math.sqrt(self.n_outputs), generator=generator)
            self.recurrent_weight.mul_(self.no_self_connections)
            for delays in (self.delays, self.recurrent_delays):
                delays.copy_(torch.randint(self.n_delays, delays.shape, generator=generator))

    def constants(self) -> LSNNConstants:
        """The fixed coefficients of :func:`snnexp.functional.lsnn.lsnn_layer`."""
        return LSNNConstants(
            self.alpha,
            self.rho,
            self.threshold,
            self.beta,
            self.refractory_steps,
            self.dampening,
            self.n_delays,
        )

    def _arguments(self, spikes: torch.Tensor) -> tuple:
        return (
            spikes,
            self.weight,
            self.recurrent_weight * self.no_self_connections,
            self.delays,
            self.recurrent_delays,
            self.constants(),
        )

    def forward(
        self, spikes: torch.Tensor, record: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Input spikes ``(steps, batch, n_in)`` -> spikes ``(steps, batch, n)`` and, with
        ``record``, the membrane and threshold traces."""
        out, trace = lsnn_layer(*self._arguments(spikes), record)
        if trace is None:
            return out, {}
        return out, {"membrane": trace.membrane, "threshold": trace.threshold}

    def reduced(
        self, spikes: torch.Tensor, window: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """sum_t window_t z_t and the spike counts sum_t z_t ``(batch, n)`` of the layer's
        spikes z_t, without keeping the spikes of every step as floats
        (:func:`snnexp.functional.lsnn.lsnn_layer_readout`)."""
        return lsnn_layer_readout(*self._arguments(spikes), window)

    def extra_repr(self) -> str:
        return (
            f"n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, n_delays={self.n_delays}, "
            f"n_adaptive={int((self.beta > 0).sum())}"
        )


class FilteredLinearReadout(nn.Module):
    r"""LSNN's read-out: the spikes filtered as psp_t = kappa psp_{t-1} + (1 - kappa) z_t
    (kappa = exp(-dt / tau)), a linear map y_t = psp_t W + b and the mean of y_t over the last
    ``window`` steps as the scores. ``weight`` ``(n, classes)`` starts as Glorot-uniform (as
    TensorFlow's default), ``bias`` at 0."""

    def __init__(self, n: int, n_classes: int, tau: float, dt: float, dtype: torch.dtype) -> None:
        super().__init__()
        self.n_inputs, self.n_outputs = n, n_classes
        self.weight = nn.Parameter(torch.zeros(n, n_classes, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n_classes, dtype=dtype))
        self.decay = math.exp(-dt / tau)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Glorot uniform: U(+-sqrt(6 / (n + classes)))."""
        bound = math.sqrt(6.0 / (self.n_inputs + self.n_outputs))
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            self.bias.zero_()

    def window(
        self, steps: int, window: int, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        """c_t ``(steps,)``: the mean over the last ``window`` steps of the filtered spikes is
        sum_t c_t z_t (:func:`snnexp.functional.lsnn.window_filter_weights`)."""
        return window_filter_weights(steps, window, self.decay, dtype, device)

    def forward(self, filtered: torch.Tensor) -> torch.Tensor:
        """Scores ``(batch, classes)`` of the window's mean of the filtered spikes
        sum_t c_t z_t ``(batch, n)``: that mean times W, plus b."""
        return filtered @ self.weight + self.bias

    def by_step(self, spikes: torch.Tensor) -> torch.Tensor:
        """y_t of every step ``(steps, batch, classes)`` (for figures)."""
        psp = torch.zeros_like(spikes[0])
        filtered = []
        for z in spikes:
            psp = self.decay * psp + (1.0 - self.decay) * z
            filtered.append(psp)
        return torch.stack(filtered) @ self.weight + self.bias


class LSNNNetwork(SteppedReadoutNetwork):
    """Encoder -> :class:`LSNNRecurrentLayer` -> :class:`FilteredLinearReadout`, all steps at
    once (the fused layer keeps only what its backward pass needs)."""

    def __init__(
        self,
        encoder: SpikeEncoder,
        steps: int,
        recurrent: LSNNRecurrentLayer,
        readout: FilteredLinearReadout,
        readout_steps: int,
    ) -> None:
        super().__init__(encoder, steps, "filtered_linear", readout_steps, chunk_steps=steps)
        self.recurrent = recurrent
        self.output = readout

    def presynaptic_populations(self) -> list[tuple[str, bool]]:
        """The presynaptic neurons of each matrix that DEEP R rewires, in
        :func:`snnexp.rules.deep_r.rewired_weights` order, as (name, shuffled): the inputs of
        the recurrent layer's weight, the recurrent neurons of its recurrent weight and of the
        read-out's (one sign per neuron with ``signs: lsnn``; LSNN shuffles the inputs' signs,
        not the recurrent neurons')."""
        return [("input", True), ("recurrent", False), ("recurrent", False)]

    def simulate(
        self, input_times: torch.Tensor, record: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, list[torch.Tensor]]]:
        """Scores, the recurrent layer's spike counts and (``record``) the traces ``input``,
        ``spikes_0``, ``membrane_0``, ``threshold_0`` and ``output_1`` (the read-out y_t)."""
        generator = self.input_generator(input_times.device)
        x = self.encoder(input_times, 0, self.steps, generator)
        window = self.output.window(self.steps, self.readout_steps, x.dtype, x.device)
        if not record:
            filtered, counts = self.recurrent.reduced(x, window)
            return self.output(filtered), [counts], {}
        z, trace = self.recurrent(x, record)
        filtered, counts = reduce_spikes(z, window)
        traces = {"input": [x], "spikes_0": [z], "output_1": [self.output.by_step(z)]}
        traces.update({f"{name}_0": [values] for name, values in trace.items()})
        return self.output(filtered), [counts], traces
