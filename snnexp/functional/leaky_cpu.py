r"""All steps of a population of leaky integrate-and-fire neurons without adaptation (models
leaky, iaf and lapicque of first order; synaptic and alpha with a synaptic current) as one
compiled CPU loop (Numba), forward and backward, bitwise equal to the step-by-step torch
operations of :func:`snnexp.functional.stepped.base.neuron_step` and their autograd graph.

Forward, per step (alpha: the membrane decay, alpha_s: the current's decay, g: the input gain,
theta: the threshold), with the drive D_t = I_t (first order) or D_t = i_t,
i_t = alpha_s i_{t-1} + I_t:

    v_t = alpha v_{t-1} + g D_t - theta z_{t-1}        (reset by subtraction)
    v_t = alpha v_{t-1} (1 - z_{t-1}) + g D_t          (reset to zero)
    z_t = H(v_t - theta)

Backward (the reset's spikes are detached, as in the torch step), with the surrogate
derivative s_t = sigma'(v_t - theta) (:mod:`snnexp.functional.surrogate`):

    dL/dv_t = dL/dz_t s_t + alpha dL/dv_{t+1}   (zero reset: alpha (1 - z_t) dL/dv_{t+1})
    dL/dD_t = g dL/dv_t,   dL/di_t = dL/dD_t + alpha_s dL/di_{t+1},   dL/dI_t = dL/dD_t or dL/di_t

Every operation is the one torch computes, in the same order and in the tensors' dtype (the
Python scalars cast to it as torch casts them), so the values are torch's bit for bit; a sum of
two gradient terms does not depend on their order. Each thread takes whole samples: no value
depends on the number of threads, which follows torch's (inside
:func:`snnexp.functional.threads.torch_single_threaded`, the count on entry).

Used through :meth:`snnexp.modules.neurons.SpikingNeurons.all_steps` (by the layers of a stack,
the neurons blocks of a graph outside cycles and the module itself) on the CPU without
recurrent weights, refractory steps, trained time constants or recorded traces
(:func:`fused_leaky_applies`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numba import njit, prange

from snnexp.functional.stepped.base import NeuronState, StepCoefficients
from snnexp.functional.surrogate import Surrogate
from snnexp.functional.threads import use_numba_threads

SURROGATE_CODES = {"fast_sigmoid": 0, "arctan": 1, "triangle": 2}
"""The surrogates the loop computes, by its code for them."""


@njit(cache=True, nogil=True, inline="always")
def _derivative(x: Any, code: int, k: tuple) -> Any:
    """gamma sigma'(x) as :meth:`Surrogate.derivative` computes it, operation by operation."""
    one, slope, dampening, pi_slope, half_slope = k
    if code == 0:
        base = one + abs(x) * slope
        return dampening * ((one / (base * base)) * one)
    if code == 1:
        scaled = (x * pi_slope) / (one + one)
        return dampening * ((one / (scaled * scaled + one)) * half_slope)
    rest = one - abs(x) * slope
    return dampening * ((rest if not rest < one - one else one - one) * slope)


@njit(cache=True, nogil=True, inline="always")
def _reached_sum(first: Any, has_first: bool, second: Any, has_second: bool) -> Any:
    """first + second where both gradient terms reach the value in torch's graph, else the one
    that does (adding a zero for a missing term could flip the sign of a zero)."""
    if has_first and has_second:
        return first + second
    return first if has_first else second


@njit(parallel=True, cache=True, nogil=True)
def _forward(  # noqa: PLR0913
    currents: np.ndarray,
    v0: np.ndarray,
    i0: np.ndarray,
    z0: np.ndarray,
    decay: np.ndarray,
    syn_decay: np.ndarray,
    gain: Any,
    threshold: Any,
    reset_to_zero: bool,
    code: int,
    k: tuple,
    spikes: np.ndarray,
    v_last: np.ndarray,
    i_last: np.ndarray,
    derivative: np.ndarray,
) -> None:
    steps, batch, n = currents.shape
    keep = derivative.shape[0] > 0
    has_current = i0.shape[0] > 0
    one = k[0]
    zero = one - one
    for b in prange(batch):
        v = v0[b].copy()
        z = z0[b].copy()
        i = i0[b].copy() if has_current else v0[b].copy()
        for t in range(steps):
            for j in range(n):
                drive = currents[t, b, j]
                if has_current:
                    i[j] = syn_decay[j] * i[j] + drive
                    drive = i[j]
                if reset_to_zero:
                    v[j] = (decay[j] * v[j]) * (one - z[j]) + drive * gain
                else:
                    v[j] = (decay[j] * v[j] + drive * gain) - z[j] * threshold
                x = v[j] - threshold
                z[j] = one if x >= zero else zero
                spikes[t, b, j] = z[j]
                if keep:
                    derivative[t, b, j] = _derivative(x, code, k)
        v_last[b] = v
        if has_current:
            i_last[b] = i


@njit(parallel=True, cache=True, nogil=True)
def _backward(  # noqa: PLR0913, PLR0912
    grad_spikes: np.ndarray,
    grad_v_last: np.ndarray,
    grad_i_last: np.ndarray,
    derivative: np.ndarray,
    spikes: np.ndarray,
    z0: np.ndarray,
    decay: np.ndarray,
    syn_decay: np.ndarray,
    gain: Any,
    reset_to_zero: bool,
    k: tuple,
    grad_currents: np.ndarray,
    grad_v0: np.ndarray,
    grad_i0: np.ndarray,
) -> None:
    steps, batch, n = derivative.shape
    has_current = syn_decay.shape[0] > 0
    from_spikes = grad_spikes.shape[0] > 0
    from_last = grad_v_last.shape[0] > 0
    from_i_last = grad_i_last.shape[0] > 0
    v_reached = from_spikes or from_last
    one = k[0]
    for b in prange(batch):
        dv = np.zeros(n, dtype=derivative.dtype)
        di = np.zeros(n, dtype=derivative.dtype)
        for t in range(steps - 1, -1, -1):
            for j in range(n):
                if t < steps - 1:
                    if reset_to_zero:
                        later = (dv[j] * (one - spikes[t, b, j])) * decay[j]
                    else:
                        later = dv[j] * decay[j]
                    has_later = True
                else:
                    later = grad_v_last[b, j] if from_last else dv[j]
                    has_later = from_last
                local = grad_spikes[t, b, j] * derivative[t, b, j] if from_spikes else later
                dv[j] = _reached_sum(local, from_spikes, later, has_later)
                if not has_current:
                    grad_currents[t, b, j] = dv[j] * gain
                    continue
                if t < steps - 1:
                    carried = di[j] * syn_decay[j]
                    has_carried = True
                else:
                    carried = grad_i_last[b, j] if from_i_last else di[j]
                    has_carried = from_i_last
                di[j] = _reached_sum(dv[j] * gain, v_reached, carried, has_carried)
                grad_currents[t, b, j] = di[j]
        if grad_v0.shape[0] > 0:
            for j in range(n):
                if reset_to_zero:
                    grad_v0[b, j] = (dv[j] * (one - z0[b, j])) * decay[j]
                else:
                    grad_v0[b, j] = dv[j] * decay[j]
        if grad_i0.shape[0] > 0:
            for j in range(n):
                grad_i0[b, j] = di[j] * syn_decay[j]


FUSED_MODELS = {"leaky": None, "iaf": None, "lapicque": None, "synaptic": "syn", "alpha": "mem"}
"""The models the loop computes, with the decay of their synaptic current: None (no current,
first order), ``syn`` (tau_syn) or ``mem`` (tau_mem, the alpha-function PSP)."""


def fused_leaky_applies(
    currents: torch.Tensor, params: StepCoefficients, surrogate: Surrogate
) -> bool:
    """Whether :func:`fused_leaky` computes these steps: on the CPU, in float32 or float64,
    a model of :data:`FUSED_MODELS` without refractory steps, with a constant input gain,
    untrained time constants and a surrogate of :data:`SURROGATE_CODES`."""
    decays = (params.mem_decay, params.syn_decay)
    return (
        currents.device.type == "cpu"
        and currents.dtype in (torch.float32, torch.float64)
        and params.model in FUSED_MODELS
        and params.refractory_steps == 0
        and isinstance(params.input_gain, float)
        and not any(isinstance(d, torch.Tensor) and d.requires_grad for d in decays)
        and surrogate.type in SURROGATE_CODES
    )


def fused_leaky(
    currents: torch.Tensor, state: NeuronState, params: StepCoefficients, surrogate: Surrogate
) -> tuple[torch.Tensor, NeuronState]:
    """The spikes of all steps of ``currents`` ``(steps, batch, n)`` and the state after the
    last step, bitwise as the step-by-step torch operations give them (module docstring)."""
    n = currents.shape[2]

    def per_neuron(value: float | torch.Tensor) -> torch.Tensor:
        tensor = torch.as_tensor(value, dtype=currents.dtype).detach()
        return tensor.expand(n).contiguous()

    current_decay = FUSED_MODELS[params.model]
    syn_decay = currents.new_empty(0)
    if current_decay is not None:
        syn_decay = per_neuron(params.syn_decay if current_decay == "syn" else params.mem_decay)
    i0 = currents.new_empty((0, 0)) if state.i is None else state.i
    decay = per_neuron(params.mem_decay)
    spikes, v, i = _FusedLeaky.apply(
        currents, state.v, i0, state.z.detach(), decay, syn_decay, params, surrogate
    )
    return spikes, state._replace(v=v, i=None if state.i is None else i, z=spikes[-1])


def _constants(params: StepCoefficients, surrogate: Surrogate, dtype: torch.dtype) -> tuple:
    """The scalars of the loops in ``dtype``, each rounded from the Python float that the torch
    operations take: (gain, threshold, (1, k, gamma, pi k, k / 2))."""
    cast = torch.empty(0, dtype=dtype).numpy().dtype.type
    slope = surrogate.slope
    k = (cast(1.0), cast(slope), cast(surrogate.dampening), cast(math.pi * slope), cast(slope / 2))
    return cast(params.input_gain), cast(params.threshold), k


class _FusedLeaky(torch.autograd.Function):
    @staticmethod
    def forward(  # noqa: PLR0913
        ctx: Any,
        currents: torch.Tensor,
        v0: torch.Tensor,
        i0: torch.Tensor,
        z0: torch.Tensor,
        decay: torch.Tensor,
        syn_decay: torch.Tensor,
        params: StepCoefficients,
        surrogate: Surrogate,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        use_numba_threads()
        gain, threshold, k = _constants(params, surrogate, currents.dtype)
        keep = any(ctx.needs_input_grad[:3])
        steps, batch, n = currents.shape
        spikes = currents.new_empty((steps, batch, n))
        v_last = currents.new_empty((batch, n))
        i_last = torch.empty_like(i0)
        derivative = currents.new_empty((steps, batch, n) if keep else (0, 0, 0))
        reset_to_zero = params.reset != "subtract"
        _forward(
            currents.detach().contiguous().numpy(),
            v0.detach().contiguous().numpy(),
            i0.detach().contiguous().numpy(),
            z0.contiguous().numpy(),
            decay.numpy(),
            syn_decay.numpy(),
            gain,
            threshold,
            reset_to_zero,
            SURROGATE_CODES[surrogate.type],
            k,
            spikes.numpy(),
            v_last.numpy(),
            i_last.numpy(),
            derivative.numpy(),
        )
        ctx.save_for_backward(derivative, spikes, z0, decay, syn_decay)
        ctx.gain, ctx.reset_to_zero, ctx.k = gain, reset_to_zero, k
        ctx.set_materialize_grads(False)
        return spikes, v_last, i_last

    @staticmethod
    def backward(
        ctx: Any,
        grad_spikes: torch.Tensor | None,
        grad_v_last: torch.Tensor | None,
        grad_i_last: torch.Tensor | None,
    ) -> tuple[torch.Tensor | None, ...]:
        """The loops' adjoint; the initial membrane (current) gets a gradient only where one
        reaches it, as in torch's graph."""
        derivative, spikes, z0, decay, syn_decay = ctx.saved_tensors
        use_numba_threads()
        v_reached = grad_spikes is not None or grad_v_last is not None
        none = spikes.new_empty((0, 0))
        grad_currents = torch.empty_like(spikes)
        grad_v0 = torch.empty_like(z0) if ctx.needs_input_grad[1] and v_reached else none
        grad_i0 = torch.empty_like(z0) if ctx.needs_input_grad[2] else none
        _backward(
            (spikes.new_empty((0, 0, 0)) if grad_spikes is None else grad_spikes)
            .contiguous()
            .numpy(),
            (none if grad_v_last is None else grad_v_last).contiguous().numpy(),
            (none if grad_i_last is None else grad_i_last).contiguous().numpy(),
            derivative.numpy(),
            spikes.numpy(),
            z0.numpy(),
            decay.numpy(),
            syn_decay.numpy(),
            ctx.gain,
            ctx.reset_to_zero,
            ctx.k,
            grad_currents.numpy(),
            grad_v0.numpy(),
            grad_i0.numpy(),
        )
        return (
            grad_currents,
            grad_v0 if grad_v0.numel() else None,
            grad_i0 if grad_i0.numel() else None,
            None,
            None,
            None,
            None,
            None,
        )
