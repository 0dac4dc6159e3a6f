r"""Time-stepped simulation of the current-based LIF neuron: pure step functions over state.

The neuron of :mod:`snnexp.functional.neuron` (any tau_mem, tau_syn):

    C_m du/dt = -g_L (u - E_L) + I(t),      C_m = g_L tau_mem
    tau_syn dI/dt = -I,                     I jumps by w_i at t_i

**Exact integration per step.** The ODE is linear, so over a step of length h without input

    I(t + h)       = e^{-h/tau_s} I(t)
    u(t + h) - E_L = e^{-h/tau_m} (u(t) - E_L) + P(h) I(t)

    P(h) = tau_s / (g_L (tau_m - tau_s)) (e^{-h/tau_m} - e^{-h/tau_s})    (tau_m != tau_s)
         = h / (g_L tau) e^{-h/tau}                                       (tau_m = tau_s = tau)

(the propagator matrix of (I, u); :func:`propagator`). There is no Euler error.

**Input convention.** Steps end at t_n = n dt, n = 1..ceil(sim_time / dt). An input spike at
t_i in (t_{n-1}, t_n] is delivered at the step boundary t_n after its time, carrying its exact
decay over the offset o = t_n - t_i: I += w_i e^{-o/tau_s}, u += w_i P(o) (inputs at t_i <= 0 go
to t_1 the same way). Hence at every step boundary I and u equal the exact solution; the only
discretisation is where spikes are looked for.

**Spike convention.** A neuron's first spike is the first step end t_n with u(t_n) >= theta;
there is no reset (only first spikes count) and the neuron keeps integrating, so recorded traces
go on after the spike. The stepped first spike therefore lies in [t_exact, t_exact + dt) of the
exact first crossing, except at *threshold grazes*: when u rises above theta and falls back
between two step ends, the stepped model misses that crossing (it spikes later or never). Such
an excursion lasts less than dt, so its peak exceeds theta by at most
max |d^2u/dt^2| dt^2 / 8; that is the tolerance within which the two models may disagree about
whether (and so when) a neuron spikes. Conversely, a neuron whose stepped membrane never reaches
theta has no exact crossing except for such a graze.

In a network, each layer is simulated over the whole time window from the first spikes of the
layer below, which therefore arrive on the step grid (zero synaptic delay: a spike found at
t_n is delivered at t_n) — the same as stepping all layers together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from snnexp.functional.neuron import NeuronParams
from snnexp.functional.time_grid import in_steps


class SteppedSimulation(NamedTuple):
    """A simulation of the neuron ``neuron`` in steps of ``dt`` over [0, sim_time] (not a
    parameter set of its own: the neuron is a :class:`NeuronParams`)."""

    neuron: NeuronParams = NeuronParams()
    dt: float = 0.01
    sim_time: float = 4.0

    @property
    def n_steps(self) -> int:
        """Number of steps: the last one ends at or after sim_time."""
        return max(1, math.ceil(self.sim_time / self.dt - 1e-9))


class Propagator(NamedTuple):
    """Exact one-step solution of the linear (I, u) system over a step of length h."""

    syn_decay: torch.Tensor | float
    """e^{-h/tau_s}"""
    mem_decay: torch.Tensor | float
    """e^{-h/tau_m}"""
    syn_to_mem: torch.Tensor | float
    """P(h): membrane response at h to a unit current at 0"""


class CubaState(NamedTuple):
    """State of a group of neurons, each tensor (batch, n_neurons)."""

    current: torch.Tensor
    membrane: torch.Tensor
    first_spike: torch.Tensor
    """time of the first step end with u >= theta; +inf until then"""


class SteppedRecord(NamedTuple):
    """A layer's first spikes and, on request, its traces at every step end."""

    first_spike: torch.Tensor
    """(batch, n_neurons), +inf where the neuron did not spike within sim_time"""
    times: torch.Tensor | None = None
    """(n_steps,) step ends t_n"""
    membrane: torch.Tensor | None = None
    """(n_steps, batch, n_neurons)"""
    current: torch.Tensor | None = None
    """(n_steps, batch, n_neurons)"""
    spikes: torch.Tensor | None = None
    """(n_steps, batch, n_neurons) bool, True at the step of the first spike"""


def propagator(params: NeuronParams, h: torch.Tensor | float) -> Propagator:
    """The exact propagator over a step of length ``h`` (a number or elementwise on a tensor)."""
    h_t = torch.as_tensor(h, dtype=torch.float64)
    tau_s, tau_m = params.tau_syn, params.tau_mem
    syn_decay = torch.exp(-h_t / tau_s)
    mem_decay = torch.exp(-h_t / tau_m)
    if math.isclose(tau_m, tau_s, rel_tol=1e-12):
        syn_to_mem = h_t / (params.g_leak * tau_m) * mem_decay
    else:
        # e^{-h/tau_m} - e^{-h/tau_s} = -e^{-h/tau_m} expm1(-h (tau_m - tau_s) / (tau_m tau_s))
        rate = (tau_m - tau_s) / (tau_m * tau_s)
        syn_to_mem = -tau_s / (params.g_leak * (tau_m - tau_s)) * mem_decay
        syn_to_mem = syn_to_mem * torch.expm1(-h_t * rate)
    if isinstance(h, torch.Tensor):
        dtype = h.dtype
        return Propagator(syn_decay.to(dtype), mem_decay.to(dtype), syn_to_mem.to(dtype))
    return Propagator(syn_decay.item(), mem_decay.item(), syn_to_mem.item())


def initial_state(shape: tuple[int, int], params: NeuronParams, like: torch.Tensor) -> CubaState:
    """Neurons at rest (I = 0, u = E_L) that have not spiked, dtype and device of ``like``."""
    zeros = torch.zeros(shape, dtype=like.dtype, device=like.device)
    return CubaState(
        current=zeros,
        membrane=zeros + params.leak,
        first_spike=torch.full_like(zeros, torch.inf),
    )


def cuba_step(
    state: CubaState,
    syn_input: torch.Tensor | float,
    mem_input: torch.Tensor | float,
    t_end: float,
    step: Propagator,
    params: NeuronParams,
) -> tuple[CubaState, torch.Tensor]:
    """One step ending at ``t_end``: exact propagation, then the inputs delivered at ``t_end``.

    ``syn_input`` / ``mem_input`` are the jumps of I and u at the boundary (sum over arriving
    inputs of w_i e^{-o_i/tau_s} and w_i P(o_i)). Returns the new state and the boolean tensor of
    neurons whose first spike is at ``t_end``.
    """
    current = step.syn_decay * state.current + syn_input
    membrane = (
        params.leak
        + step.mem_decay * (state.membrane - params.leak)
        + step.syn_to_mem * state.current
        + mem_input
    )
    spikes = (membrane >= params.threshold) & torch.isinf(state.first_spike)
    first_spike = torch.where(spikes, t_end, state.first_spike)
    return CubaState(current, membrane, first_spike), spikes


class _Deliveries(NamedTuple):
    """When each input arrives (step index, n_steps + 1 for never) and its jump factors."""

    step: torch.Tensor
    syn: torch.Tensor
    mem: torch.Tensor


def _deliveries(input_times: torch.Tensor, sim: SteppedSimulation) -> _Deliveries:
    """Step index n_i = max(ceil(t_i / dt), 1) and jump factors e^{-o_i/tau_s} and P(o_i) of
    the offset o_i = n_i dt - t_i.

    Inputs that never spike or arrive after the last step get index n_steps + 1 and factor 0.
    """
    n_steps = sim.n_steps
    finite = torch.isfinite(input_times)
    safe = torch.where(finite, input_times, 0.0)
    index = torch.clamp(torch.ceil(in_steps(safe, sim.dt)), min=1)
    arrives = finite & (index <= n_steps)
    index = torch.where(arrives, index, float(n_steps + 1))
    offset = torch.where(arrives, index * sim.dt - safe, 0.0)
    jump = propagator(sim.neuron, offset)
    return _Deliveries(
        step=index.long(),
        syn=torch.where(arrives, jump.syn_decay, 0.0),
        mem=torch.where(arrives, jump.syn_to_mem, 0.0),
    )


def simulate_layer(
    input_times: torch.Tensor, weights: torch.Tensor, sim: SteppedSimulation, record: bool = False
) -> SteppedRecord:
    """Step a layer of neurons from rest over [0, sim_time] driven by one spike per input.

    Args:
        input_times: (batch, n_inputs) spike times, +inf for inputs that never spike.
        weights: (n_inputs, n_outputs).
        sim: neuron parameters, dt and sim_time.
        record: also return membrane, current and spikes at every step end.
    """
    arrivals = _deliveries(input_times, sim)
    step = propagator(sim.neuron, sim.dt)
    n_steps = sim.n_steps
    busy = torch.bincount(arrivals.step.flatten(), minlength=n_steps + 2).tolist()
    state = initial_state((input_times.shape[0], weights.shape[1]), sim.neuron, input_times)
    traces: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for n in range(1, n_steps + 1):
        syn_input: torch.Tensor | float = 0.0
        mem_input: torch.Tensor | float = 0.0
        if busy[n]:
            now = arrivals.step == n
            syn_input = torch.where(now, arrivals.syn, 0.0) @ weights
            mem_input = torch.where(now, arrivals.mem, 0.0) @ weights
        state, spikes = cuba_step(state, syn_input, mem_input, n * sim.dt, step, sim.neuron)
        if record:
            traces.append((state.membrane, state.current, spikes))
    if not record:
        return SteppedRecord(first_spike=state.first_spike)
    membrane, current, spikes = (torch.stack(trace) for trace in zip(*traces, strict=True))
    times = torch.arange(1, n_steps + 1, dtype=input_times.dtype, device=input_times.device)
    return SteppedRecord(state.first_spike, times * sim.dt, membrane, current, spikes)


def simulate_network(
    input_times: torch.Tensor,
    weights: Sequence[torch.Tensor],
    bias_times: Sequence[torch.Tensor],
    neurons: Sequence[NeuronParams],
    dt: float,
    sim_time: float,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """First spikes of a feed-forward network, layer by layer, each stepped over [0, sim_time].

    Layer k has parameters ``neurons[k]`` and receives the first spikes of layer k - 1 followed
    by its bias spikes ``bias_times[k]`` (the last rows of ``weights[k]``), as in
    :class:`snnexp.modules.first_spike.FirstSpikeLayer`. Returns (label-layer times,
    [hidden-layer times]).
    """
    times = input_times
    layers: list[torch.Tensor] = []
    for layer_weights, layer_bias, neuron in zip(weights, bias_times, neurons, strict=True):
        bias = layer_bias.to(times).expand(times.shape[0], -1)
        sim = SteppedSimulation(neuron, dt, sim_time)
        times = simulate_layer(torch.cat([times, bias], dim=1), layer_weights, sim).first_spike
        layers.append(times)
    return layers.pop(), layers
