r"""The recurrent layer of an LSNN (Bellec, Salaj, Subramoney, Legenstein, Maass, NeurIPS 2018),
in the order of operations of its published code (``lsnn/spiking_models.py``, class ALIF).

Per step t, with input spikes x_t, the layer's spikes z_{t-1} of the previous step and a delay
d_ij in {0 .. D-1} steps for every synapse:

    I_t = sum_ij x_{t - d_ij, i} W_ij + sum_ij z_{t - 1 - d_ij, i} R_ij
    b_t = rho b_{t-1} + (1 - rho) z_{t-1}                   rho   = exp(-dt / tau_adapt)
    A_t = theta + beta b_t                                   (beta = 0: a regular neuron)
    v_t = alpha v_{t-1} + (1 - alpha) I_t - A_t z_{t-1}     alpha = exp(-dt / tau_mem)
    u_t = (v_{t-1} - A_t) / A_t
    z_t = H(u_t) (0 while refractory: n_ref steps after a spike)

The spike uses the membrane of the *previous* step and the reset subtracts the *adaptive*
threshold, as in the published code. Backward, dz_t / du_t is replaced by the pseudo-derivative
gamma max(0, 1 - |u_t|) (0 while refractory); unlike the generic time-stepped models, the spikes
are not detached in the reset and the adaptation, so gradients flow through both, as in LSNN.

:func:`lsnn_layer` is the fused implementation: one autograd node for all steps, event-driven
products (only the weights of synapses whose presynaptic neuron spiked are added, into the
currents of the steps their delays reach) and a backward pass that stores only spikes, the
pseudo-derivative, the threshold and the previous membrane, and computes the recurrent error
only for the neurons whose pseudo-derivative is non-zero. On the CPU it runs as compiled loops
(:mod:`snnexp.functional.lsnn_cpu`), elsewhere as torch operations step by step.
:func:`lsnn_layer_readout` gives only sum_t c_t z_t and sum_t z_t (a read-out's and a rate
regulariser's need) and keeps less. :func:`lsnn_layer_plain` is the same layer as plain
autograd operations (the reference the fused ones are tested against).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch

from snnexp.functional import lsnn_cpu
from snnexp.functional.surrogate import Surrogate, spike
from snnexp.functional.synapse_events import (
    collect,
    delay_expanded,
    deliver,
    event_bases,
    synapse_offsets,
)


class LSNNConstants(NamedTuple):
    """The layer's fixed coefficients: membrane decay alpha, adaptation decay rho, base
    threshold theta, adaptation strengths beta ``(n,)``, refractory steps, the pseudo-
    derivative's dampening gamma and the number of delay slots D."""

    alpha: float
    rho: float
    threshold: float
    beta: torch.Tensor
    refractory_steps: int
    dampening: float
    n_delays: int


class LSNNTrace(NamedTuple):
    """What the layer gives besides its spikes, for figures: the membrane v_t and the
    threshold A_t of every step ``(steps, batch, n)``."""

    membrane: torch.Tensor
    threshold: torch.Tensor


def _input_events(
    spikes: torch.Tensor, chunk_steps: int = 64
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(step, sample, input neuron, amplitude) of the non-zero inputs, a chunk of steps at a
    time (bounded memory)."""
    for first in range(0, len(spikes), chunk_steps):
        t, b, i = spikes[first : first + chunk_steps].nonzero(as_tuple=True)
        if len(t):
            yield first + t, b, i, spikes[first + t, b, i]


class _Simulation(NamedTuple):
    """The layer's spikes and what the backward pass or a figure needs of every step (empty
    where not asked for)."""

    spikes: torch.Tensor
    previous_membrane: torch.Tensor
    threshold: torch.Tensor
    derivative: torch.Tensor
    membrane: torch.Tensor


def _simulate(
    spikes: torch.Tensor,
    weight: torch.Tensor,
    recurrent_weight: torch.Tensor,
    delays: torch.Tensor,
    recurrent_delays: torch.Tensor,
    c: LSNNConstants,
    for_backward: bool,
    record: bool,
) -> _Simulation:
    """The forward pass of the fused layer. The input currents of all steps are added into a
    buffer ``(batch, steps + D, n)`` first, event by event; each step then adds its
    predecessor's spikes, event by event (module docstring)."""
    steps, batch, _ = spikes.shape
    n = weight.shape[1]
    currents = spikes.new_zeros((batch, steps + c.n_delays + 1, n))
    input_offsets = synapse_offsets(delays)
    for t, b, i, amplitude in _input_events(spikes):
        deliver(currents, event_bases(currents, t, b), i, amplitude, input_offsets, weight)
    recurrent_offsets = synapse_offsets(recurrent_delays)
    v = spikes.new_zeros((batch, n))
    b = torch.zeros_like(v)
    z = torch.zeros_like(v)
    refractory = torch.zeros((batch, n), dtype=torch.int32, device=spikes.device)
    empty = spikes.new_empty(0)
    out = spikes.new_empty((steps, batch, n))
    previous = torch.empty_like(out) if for_backward else empty
    derivative = torch.empty_like(out) if for_backward else empty
    threshold = torch.empty_like(out) if for_backward or record else empty
    membrane = torch.empty_like(out) if record else empty
    for t in range(steps):
        sender, source = z.nonzero(as_tuple=True)
        if len(sender):
            bases = event_bases(currents, t, sender)
            deliver(currents, bases, source, z[sender, source], recurrent_offsets, recurrent_weight)
        b = c.rho * b + (1.0 - c.rho) * z
        a = c.threshold + c.beta * b
        u = (v - a) / a
        if for_backward:
            previous[t] = v
        if for_backward or record:
            threshold[t] = a
        v = c.alpha * v + (1.0 - c.alpha) * currents[:, t] - a * z
        fired = u > 0
        if c.refractory_steps > 0:
            refractory = torch.where(z > 0, c.refractory_steps, (refractory - 1).clamp_(min=0))
            allowed = refractory == 0
            fired = fired & allowed
        z = fired.to(v.dtype)
        out[t] = z
        if for_backward:
            slope = c.dampening * (1.0 - u.abs()).clamp_(min=0.0)
            derivative[t] = slope * allowed if c.refractory_steps > 0 else slope
        if record:
            membrane[t] = v
    return _Simulation(out, previous, threshold, derivative, membrane)


def _compiled(spikes: torch.Tensor) -> bool:
    """Whether the layer runs as compiled loops (CPU tensors) rather than torch operations."""
    return spikes.device.type == "cpu"


def _needs_backward(weight: torch.Tensor, recurrent_weight: torch.Tensor) -> bool:
    """Whether autograd will ask the layer for weight gradients."""
    return torch.is_grad_enabled() and (weight.requires_grad or recurrent_weight.requires_grad)


def _coefficients(c: LSNNConstants, dtype: torch.dtype) -> lsnn_cpu.Coefficients:
    return lsnn_cpu.coefficients(c.alpha, c.rho, c.threshold, c.dampening, dtype)


class _FusedLSNN(torch.autograd.Function):
    """The layer over all steps as one autograd node, in torch operations (module docstring)."""

    @staticmethod
    def forward(  # noqa: PLR0913
        ctx,  # noqa: ANN001
        spikes: torch.Tensor,
        weight: torch.Tensor,
        recurrent_weight: torch.Tensor,
        delays: torch.Tensor,
        recurrent_delays: torch.Tensor,
        constants: LSNNConstants,
        record: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        run = _simulate(
            spikes, weight, recurrent_weight, delays, recurrent_delays, constants, True, record
        )
        ctx.save_for_backward(
            spikes,
            recurrent_weight,
            delays,
            recurrent_delays,
            run.spikes,
            run.previous_membrane,
            run.threshold,
            run.derivative,
        )
        ctx.constants = constants
        ctx.weight_shape = weight.shape
        ctx.mark_non_differentiable(run.membrane, run.threshold)
        return run.spikes, run.membrane, run.threshold

    @staticmethod
    def backward(
        ctx,  # noqa: ANN001
        grad_spikes: torch.Tensor,
        _grad_membrane: torch.Tensor,
        _grad_threshold: torch.Tensor,
    ) -> tuple[None, torch.Tensor, torch.Tensor, None, None, None, None]:
        r"""Reverse-time adjoints, with e_t = dL/dI_t kept in a buffer ``(batch, steps + D, n)``:

            dL/dz_t = g_t + (1 - rho) dL/db_{t+1} - A_{t+1} dL/dv_{t+1} + sum_j R_ij e_{t+1+d_ij, j}
            dL/du_t = dL/dz_t gamma max(0, 1 - |u_t|)
            dL/dv_t = alpha dL/dv_{t+1} + dL/du_{t+1} / A_{t+1},      e_t = (1 - alpha) dL/dv_t
            dL/dA_t = -dL/du_t v_{t-1} / A_t^2 - dL/dv_t z_{t-1}
            dL/db_t = rho dL/db_{t+1} + beta dL/dA_t

        (g_t: the loss's own gradient of the spikes); the weight gradients gather e at each
        input or recurrent spike's synapse delays."""
        (spikes, recurrent_weight, delays, recurrent_delays, out, previous, threshold,
         derivative) = ctx.saved_tensors  # fmt: skip
        c: LSNNConstants = ctx.constants
        steps, batch, n = out.shape
        errors = out.new_zeros((batch, steps + c.n_delays + 1, n))
        stacked = delay_expanded(recurrent_weight, recurrent_delays, c.n_delays).T
        zeros = out.new_zeros((batch, n))
        dv_next, db_next, du_next = zeros, zeros, zeros
        a_next = torch.ones_like(zeros)
        for t in range(steps - 1, -1, -1):
            upcoming = errors[:, t + 1 : t + 1 + c.n_delays].reshape(batch, -1)
            dz = torch.addmm(grad_spikes[t] + (1.0 - c.rho) * db_next - a_next * dv_next,
                             upcoming, stacked)  # fmt: skip
            du = dz * derivative[t]
            dv = c.alpha * dv_next + du_next / a_next
            a = threshold[t]
            da = -du * previous[t] / (a * a)
            if t > 0:
                da = da - dv * out[t - 1]
            db = c.rho * db_next + c.beta * da
            errors[:, t] = (1.0 - c.alpha) * dv
            dv_next, db_next, du_next, a_next = dv, db, du, a
        grad_weight = recurrent_weight.new_zeros(ctx.weight_shape)
        input_offsets = synapse_offsets(delays)
        for t, b, i, amplitude in _input_events(spikes):
            collect(grad_weight, errors, event_bases(errors, t, b), i, amplitude, input_offsets)
        grad_recurrent = torch.zeros_like(recurrent_weight)
        recurrent_offsets = synapse_offsets(recurrent_delays)
        for t, b, i, amplitude in _input_events(out):
            bases = event_bases(errors, t + 1, b)
            collect(grad_recurrent, errors, bases, i, amplitude, recurrent_offsets)
        return None, grad_weight, grad_recurrent, None, None, None, None


class _CompiledLSNN(torch.autograd.Function):
    """The layer as one autograd node of compiled CPU loops (:mod:`snnexp.functional.lsnn_cpu`):
    spikes ``(steps, batch, n)``, or with a ``window`` ``(steps,)`` only the reductions
    sum_t window_t z_t and sum_t z_t ``(batch, n)`` (the spikes of every step are then kept as
    bytes for the backward pass alone)."""

    @staticmethod
    def forward(  # noqa: PLR0913
        ctx,  # noqa: ANN001
        x: torch.Tensor,
        weight: torch.Tensor,
        recurrent_weight: torch.Tensor,
        delays: torch.Tensor,
        recurrent_delays: torch.Tensor,
        constants: LSNNConstants,
        window: torch.Tensor | None,
        keep: bool,
        record: bool,
    ) -> tuple[torch.Tensor, ...]:
        c = constants
        run = lsnn_cpu.forward(
            x, weight, recurrent_weight, delays, recurrent_delays, _coefficients(c, x.dtype),
            c.beta, c.refractory_steps, c.n_delays, keep, record, window,
        )  # fmt: skip
        ctx.save_for_backward(
            x, recurrent_weight, delays, recurrent_delays, run.bits, run.previous_membrane,
            run.threshold, run.derivative, window if window is not None else x.new_empty(0),
        )  # fmt: skip
        ctx.constants = c
        ctx.mark_non_differentiable(run.membrane, run.threshold)
        return run.spikes, run.filtered, run.counts, run.membrane, run.threshold

    @staticmethod
    def backward(  # noqa: PLR0913
        ctx,  # noqa: ANN001
        grad_spikes: torch.Tensor,
        grad_filtered: torch.Tensor,
        grad_counts: torch.Tensor,
        _grad_membrane: torch.Tensor,
        _grad_threshold: torch.Tensor,
    ) -> tuple[torch.Tensor | None, ...]:
        """The adjoints of :meth:`_FusedLSNN.backward`, the spikes' gradient g_t being the
        spikes' own, or with a window, window_t dL/dfiltered + dL/dcounts (autograd passes
        zeros for outputs the loss does not use, empty for the empty ones)."""
        (x, recurrent_weight, delays, recurrent_delays, bits, previous, threshold, derivative,
         window) = ctx.saved_tensors  # fmt: skip
        c: LSNNConstants = ctx.constants
        empty = x.new_empty(0)
        state = lsnn_cpu.ForwardState(
            spikes=empty, filtered=empty, counts=empty, bits=bits, previous_membrane=previous,
            threshold=threshold, derivative=derivative, membrane=empty,
        )  # fmt: skip
        gradient = lsnn_cpu.SpikeGradient(grad_spikes, window, grad_filtered, grad_counts)
        grad_weight, grad_recurrent = lsnn_cpu.backward(
            gradient, x, state, recurrent_weight, delays, recurrent_delays,
            _coefficients(c, x.dtype), c.beta, c.n_delays,
        )  # fmt: skip
        return None, grad_weight, grad_recurrent, None, None, None, None, None, None


def lsnn_layer(
    spikes: torch.Tensor,
    weight: torch.Tensor,
    recurrent_weight: torch.Tensor,
    delays: torch.Tensor,
    recurrent_delays: torch.Tensor,
    constants: LSNNConstants,
    record: bool = False,
) -> tuple[torch.Tensor, LSNNTrace | None]:
    """Spikes ``(steps, batch, n)`` of the layer for input spikes ``(steps, batch, n_in)``, with
    input weights ``(n_in, n)``, recurrent weights ``(n, n)`` and their delays (integer steps
    ``0 .. n_delays - 1``); with ``record`` also the membrane and threshold traces. Fused
    (module docstring); without gradients nothing is kept for a backward pass."""
    arguments = (spikes, weight, recurrent_weight, delays, recurrent_delays, constants)
    keep = _needs_backward(weight, recurrent_weight)
    if _compiled(spikes):
        out, _, _, membrane, threshold = _CompiledLSNN.apply(*arguments, None, keep, record)
    elif keep:
        out, membrane, threshold = _FusedLSNN.apply(*arguments, record)
    else:
        run = _simulate(*arguments, False, record)
        out, membrane, threshold = run.spikes, run.membrane, run.threshold
    return out, LSNNTrace(membrane, threshold) if record else None


def lsnn_layer_readout(  # noqa: PLR0913
    spikes: torch.Tensor,
    weight: torch.Tensor,
    recurrent_weight: torch.Tensor,
    delays: torch.Tensor,
    recurrent_delays: torch.Tensor,
    constants: LSNNConstants,
    window: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What a read-out and a rate regulariser need of :func:`lsnn_layer`'s spikes z_t:
    sum_t window_t z_t and sum_t z_t ``(batch, n)``. On the CPU the spikes of every step are
    not returned, only kept as bytes for the backward pass (a quarter of their memory, and no
    gradient ``(steps, batch, n)`` from the loss)."""
    arguments = (spikes, weight, recurrent_weight, delays, recurrent_delays, constants)
    if _compiled(spikes):
        keep = _needs_backward(weight, recurrent_weight)
        _, filtered, counts, _, _ = _CompiledLSNN.apply(*arguments, window, keep, False)
        return filtered, counts
    z, _ = lsnn_layer(*arguments)
    return reduce_spikes(z, window)


def reduce_spikes(z: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sum_t window_t z_t and sum_t z_t ``(batch, n)`` of spikes ``(steps, batch, n)``, added up
    step after step as the compiled layer adds them (the same numbers to the last bit)."""
    filtered = torch.zeros_like(z[0])
    for weight, step in zip(window, z, strict=True):
        filtered = filtered + weight * step
    return filtered, z.sum(dim=0)


def _delayed(
    history: list[torch.Tensor], weight: torch.Tensor, delays: torch.Tensor
) -> torch.Tensor:
    """sum_ij history[-1 - d_ij]_i W_ij: each synapse reads the step of its delay."""
    total = history[-1].new_zeros((history[-1].shape[0], weight.shape[1]))
    for delay in range(min(int(delays.max()) + 1, len(history))):
        total = total + history[-1 - delay] @ (weight * (delays == delay).to(weight.dtype))
    return total


def lsnn_layer_plain(
    spikes: torch.Tensor,
    weight: torch.Tensor,
    recurrent_weight: torch.Tensor,
    delays: torch.Tensor,
    recurrent_delays: torch.Tensor,
    constants: LSNNConstants,
) -> tuple[torch.Tensor, LSNNTrace]:
    """:func:`lsnn_layer` step by step in plain autograd operations (one dense product per delay
    and step): the reference of the fused layer."""
    c = constants
    surrogate = Surrogate("triangle", slope=1.0, dampening=c.dampening)
    steps, batch, _ = spikes.shape
    n = weight.shape[1]
    v = spikes.new_zeros((batch, n))
    b, z = torch.zeros_like(v), torch.zeros_like(v)
    refractory = torch.zeros((batch, n), dtype=torch.int32, device=spikes.device)
    inputs: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []
    membrane, threshold = [], []
    for t in range(steps):
        inputs.append(spikes[t])
        current = _delayed(inputs, weight, delays)
        if outputs:
            current = current + _delayed(outputs, recurrent_weight, recurrent_delays)
        b = c.rho * b + (1.0 - c.rho) * z
        a = c.threshold + c.beta * b
        u = (v - a) / a
        v = c.alpha * v + (1.0 - c.alpha) * current - a * z
        z_new = spike(u - torch.finfo(u.dtype).tiny, surrogate)
        if c.refractory_steps > 0:
            refractory = torch.where(
                z.detach() > 0, c.refractory_steps, (refractory - 1).clamp(min=0)
            )
            z_new = z_new * (refractory == 0).to(v.dtype)
        z = z_new
        outputs.append(z)
        membrane.append(v.detach())
        threshold.append(a.detach())
    return torch.stack(outputs), LSNNTrace(torch.stack(membrane), torch.stack(threshold))


def window_filter_weights(
    steps: int, window: int, decay: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    r"""c_t such that the mean over the last ``window`` steps of the filtered spikes

        psp_tau = decay psp_{tau-1} + (1 - decay) z_tau

    equals sum_t c_t z_t: c_t = (1 - decay) / W sum_{tau in window, tau >= t} decay^(tau - t).
    ``(steps,)``."""
    t = torch.arange(steps, dtype=torch.float64)
    first = steps - window
    taus = torch.arange(first, steps, dtype=torch.float64)
    lag = taus.unsqueeze(0) - t.unsqueeze(1)
    powers = torch.where(lag >= 0, decay ** lag.clamp(min=0), torch.zeros_like(lag))
    return ((1.0 - decay) / window * powers.sum(1)).to(device, dtype)
