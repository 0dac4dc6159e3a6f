"""torch.nn.Module shells around the time-stepped neuron math, and the BPTT network.

Each neuron model is an activation over a whole sequence, usable in ``nn.Sequential``:

>>> net = nn.Sequential(nn.Linear(784, 1000), Leaky(1000, tau_mem=2.0, dt=0.1),
...                     nn.Linear(1000, 10), Leaky(10, tau_mem=2.0, dt=0.1))
>>> spikes = net(input_spikes)            # (steps, batch, 784) -> (steps, batch, 10)

``nn.Linear`` projects all steps at once; only the neuron recurrence loops over time.
:class:`SpikingLayer` adds recurrent weights and delays, and :class:`TimeSteppedNetwork` runs a
stack of them from latency-coded input times, in chunks of steps, to a read-out per class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from snnexp.choices import READOUTS
from snnexp.data.encoding import SpikeEncoder, latency_spike_train
from snnexp.neurons.surrogate import Surrogate
from snnexp.neurons.time_stepped import (
    NeuronState,
    StepParams,
    initial_state,
    integrator_step,
    neuron_step,
    threshold_of,
)

CHUNK_STEPS = 100
"""Steps simulated per chunk: without gradients, memory depends on this, not on the steps."""
EVAL_SEED = 0
"""Seed of random input spike trains (rate code) when no generator is given (evaluation)."""


class SpikingNeurons(nn.Module):
    """A population of time-stepped neurons (model: leaky, synaptic, alif, alpha, lapicque).

    Time constants are in the units of ``dt``; with ``per_neuron_tau`` each neuron has its own,
    with ``learn_tau`` they are trained. In an alif population the last ``n_adaptive`` neurons
    (all by default) have an adaptive threshold of strength ``adapt_strength``, the others a
    fixed one (an LSNN layer). See :mod:`snnexp.neurons.time_stepped` for the equations.
    """

    def __init__(
        self,
        size: int,
        model: str = "leaky",
        *,
        dt: float = 1.0,
        tau_mem: float = 20.0,
        tau_syn: float = 5.0,
        tau_adapt: float = 700.0,
        adapt_strength: float = 1.8,
        n_adaptive: int | None = None,
        threshold: float = 1.0,
        reset: str = "subtract",
        refractory_steps: int = 0,
        resistance: float = 1.0,
        capacitance: float = 1.0,
        learn_tau: bool = False,
        per_neuron_tau: bool = False,
        surrogate: Surrogate | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.size = size
        self.model = model
        self.dt = dt
        self.threshold = threshold
        self.reset = reset
        self.refractory_steps = refractory_steps
        self.resistance = resistance
        self.capacitance = capacitance
        self.surrogate = surrogate or Surrogate()
        StepParams(model=model, reset=reset)
        shape = (size,) if per_neuron_tau else (1,)
        for name, value in (("tau_mem", tau_mem), ("tau_syn", tau_syn)):
            tensor = torch.full(shape, float(value), dtype=dtype)
            if learn_tau:
                self.register_parameter(name, nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor)
        self.tau_adapt = tau_adapt
        strength = torch.zeros(size, dtype=dtype)
        if model == "alif":
            n_adaptive = size if n_adaptive is None else n_adaptive
            strength[size - n_adaptive :] = adapt_strength
        self.register_buffer("adapt_strength", strength)

    def _decay(self, tau: torch.Tensor) -> torch.Tensor:
        """exp(-dt / tau), tau kept above dt / 100."""
        return torch.exp(-self.dt / tau.clamp(min=self.dt / 100))

    def step_params(self) -> StepParams:
        """The decay factors and gains of one step from the current time constants."""
        if self.model == "lapicque":
            mem_decay: float | torch.Tensor = 1.0 - self.dt / (self.resistance * self.capacitance)
            gain = self.dt / self.capacitance
        else:
            mem_decay, gain = self._decay(self.tau_mem), 1.0
        return StepParams(
            model=self.model,
            mem_decay=mem_decay,
            syn_decay=self._decay(self.tau_syn),
            adapt_decay=math.exp(-self.dt / self.tau_adapt),
            adapt_strength=self.adapt_strength,
            input_gain=gain,
            threshold=self.threshold,
            reset=self.reset,
            refractory_steps=self.refractory_steps,
        )

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> NeuronState:
        """The resting state of ``batch`` samples."""
        return initial_state(self.step_params(), (batch, self.size), device, dtype)

    def forward(self, currents: torch.Tensor, state: NeuronState | None = None) -> torch.Tensor:
        """Input currents ``(steps, batch, size)`` -> spikes of the same shape."""
        params = self.step_params()
        if state is None:
            state = initial_state(params, currents.shape[1:], currents.device, currents.dtype)
        spikes = []
        for current in currents:
            state = neuron_step(current, state, params, self.surrogate)
            spikes.append(state.z)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return (
            f"{self.size}, model={self.model}, dt={self.dt}, threshold={self.threshold}, "
            f"reset={self.reset}, {self.surrogate}"
        )


class Leaky(SpikingNeurons):
    """Leaky integrate-and-fire neurons (1st order): v_t = alpha v_{t-1} + x_t - reset."""

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(size, "leaky", **kwargs)  # type: ignore[arg-type]


class Synaptic(SpikingNeurons):
    """Current-based LIF neurons (2nd order): an exponential synaptic current feeds v."""

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(size, "synaptic", **kwargs)  # type: ignore[arg-type]


class Alpha(SpikingNeurons):
    """Neurons whose membrane answers an input spike with an alpha function (t/tau) e^{-t/tau}."""

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(size, "alpha", **kwargs)  # type: ignore[arg-type]


class Alif(SpikingNeurons):
    """Adaptive LIF neurons (LSNN): the threshold rises by adapt_strength x a after spikes."""

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(size, "alif", **kwargs)  # type: ignore[arg-type]


class Lapicque(SpikingNeurons):
    """Lapicque's RC neuron: v_t = (1 - dt/(R C)) v_{t-1} + (dt / C) x_t - reset."""

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(size, "lapicque", **kwargs)  # type: ignore[arg-type]


class LayerState(NamedTuple):
    """A layer's neuron state and the delayed input currents still to arrive."""

    neurons: NeuronState
    pending: torch.Tensor | None


class SpikingLayer(nn.Module):
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
        currents = inputs @ self.weight[: self.n_inputs]
        if self.bias_times.numel():
            bias = latency_spike_train(
                self.bias_times.unsqueeze(0), self.neurons.dt, first_step, len(inputs)
            )
            currents = currents + bias @ self.weight[self.n_inputs :]
        pending = state.pending
        if pending is not None:
            joined = torch.cat([pending, currents])
            currents, pending = joined[: len(inputs)], joined[len(inputs) :]
        params = self.neurons.step_params()
        neurons = state.neurons
        outputs, membrane, adaptation = [], [], []
        for current in currents:
            if self.recurrent_weight is not None:
                current = current + neurons.z @ self.recurrent_weight
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


class Readout:
    """Accumulates the label layer's outputs over the read-out window into one score per class.

    spike_count: number of spikes; max_membrane / mean_membrane: max / mean of v over the
    window; first_spike: -t_first / xi with t_first = sum_t t f_t + T (1 - sum_t f_t) and the
    first-spike indicator f_t = z_t prod_{s<t} (1 - z_s) (differentiable through the
    surrogate; T, the window's end, for no spike).
    """

    def __init__(self, kind: str, start: int, end: int, dt: float, xi: float) -> None:
        if kind not in READOUTS:
            raise ValueError(f"unknown read-out {kind!r}; available: {', '.join(READOUTS)}")
        self.kind, self.start, self.end, self.dt, self.xi = kind, start, end, dt, xi
        self.total: torch.Tensor | None = None
        self.not_yet: torch.Tensor | None = None

    def add(self, outputs: torch.Tensor, first_step: int) -> None:
        """Take in the label layer's outputs of steps ``first_step ..``."""
        lo = max(self.start - first_step, 0)
        hi = min(self.end - first_step, len(outputs))
        if lo >= hi:
            return
        window = outputs[lo:hi]
        if self.kind == "first_spike":
            self._add_first_spikes(window, first_step + lo)
            return
        part = window.amax(dim=0) if self.kind == "max_membrane" else window.sum(dim=0)
        if self.total is None:
            self.total = part
        elif self.kind == "max_membrane":
            self.total = torch.maximum(self.total, part)
        else:
            self.total = self.total + part

    def _add_first_spikes(self, window: torch.Tensor, first_step: int) -> None:
        if self.total is None:
            self.total = torch.zeros_like(window[0])
            self.not_yet = torch.ones_like(window[0])
        for offset, spikes in enumerate(window):
            first = spikes * self.not_yet
            self.total = self.total + (first_step + offset - self.start) * self.dt * first
            self.not_yet = self.not_yet * (1.0 - spikes)

    def scores(self) -> torch.Tensor:
        """(batch, classes): higher is more likely."""
        if self.total is None:
            raise RuntimeError("the read-out window received no steps")
        if self.kind == "mean_membrane":
            return self.total / (self.end - self.start)
        if self.kind == "first_spike":
            t_first = self.total + (self.end - self.start) * self.dt * self.not_yet
            return -t_first / self.xi
        return self.total


class SteppedReadoutNetwork(nn.Module):
    """A network simulated step by step from input spike times to a read-out per class (a
    stack of layers, :class:`TimeSteppedNetwork`, or a graph of blocks,
    :class:`snnexp.graph.GraphNetwork`). Subclasses define ``simulate``; ``generator`` feeds
    random encoders during training (None: a fixed seed)."""

    def __init__(
        self,
        encoder: SpikeEncoder,
        steps: int,
        readout: str = "spike_count",
        readout_steps: int | None = None,
        xi: float = 1.0,
        chunk_steps: int = CHUNK_STEPS,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.steps = steps
        self.readout = readout
        self.readout_steps = readout_steps or steps
        self.xi = xi
        self.chunk_steps = chunk_steps
        self.generator: torch.Generator | None = None

    def new_readout(self) -> Readout:
        """An empty read-out over the last ``readout_steps`` steps."""
        start = self.steps - self.readout_steps
        return Readout(self.readout, start, self.steps, self.encoder.dt, self.xi)

    def simulate(
        self, input_times: torch.Tensor, record: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, list[torch.Tensor]]]:
        """Scores, hidden spike counts and (``record``) traces, chunk by chunk."""
        raise NotImplementedError

    def forward(self, input_times: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Input spike times ``(batch, n_values)`` -> (scores, [hidden spike counts, ...])."""
        scores, hidden, _ = self.simulate(input_times)
        return scores, hidden

    @torch.no_grad()
    def record(self, input_times: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every step of a few samples (for rasters and membrane traces):
        ``(steps, batch, n)`` tensors keyed as in ``simulate``, plus ``scores``."""
        scores, _, traces = self.simulate(input_times, record=True)
        recorded = {name: torch.cat(parts) for name, parts in traces.items()}
        recorded["scores"] = scores
        return recorded


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
        generator = self.generator or torch.Generator().manual_seed(EVAL_SEED)
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
