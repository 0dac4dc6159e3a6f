r"""All steps of a population of leaky integrate-and-fire neurons (:mod:`..stepped.leaky`) as
one compiled CPU loop (Numba), forward and backward, bitwise equal to the step-by-step torch
operations of :func:`snnexp.functional.stepped.base.neuron_step` and their autograd graph.

Forward, per step (alpha: the membrane decay, g: the input gain, theta: the threshold):

    v_t = alpha v_{t-1} + g I_t - theta z_{t-1}        (reset by subtraction)
    v_t = alpha v_{t-1} (1 - z_{t-1}) + g I_t          (reset to zero)
    z_t = H(v_t - theta)

Backward (the reset's spikes are detached, as in the torch step), with the surrogate
derivative s_t = sigma'(v_t - theta) (:mod:`snnexp.functional.surrogate`):

    dL/dv_t = dL/dz_t s_t + alpha dL/dv_{t+1}   (zero reset: alpha (1 - z_t) dL/dv_{t+1})
    dL/dI_t = g dL/dv_t

Every operation is the one torch computes, in the same order and in the tensors' dtype (the
Python scalars cast to it as torch casts them), so the values are torch's bit for bit; a sum of
two gradient terms does not depend on their order. Each thread takes whole samples: no value
depends on the number of threads, which follows torch's (inside
:func:`snnexp.functional.threads.torch_single_threaded`, the count on entry).

Used by the layers of a stack (:class:`snnexp.modules.stepped_layer.SpikingLayer`) and the
neurons blocks of a graph outside cycles (:class:`snnexp.graph.blocks.Neurons`) on the CPU for
leaky neurons without recurrent weights, refractory steps, trained time constants or recorded
traces (:func:`fused_leaky_applies`).
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
        return dampening * ((one / ((one + abs(x) * slope) * (one + abs(x) * slope))) * one)
    if code == 1:
        scaled = (x * pi_slope) / (one + one)
        return dampening * ((one / (scaled * scaled + one)) * half_slope)
    rest = one - abs(x) * slope
    return dampening * ((rest if not rest < one - one else one - one) * slope)


@njit(parallel=True, cache=True, nogil=True)
def _forward(  # noqa: PLR0913
    currents: np.ndarray,
    v0: np.ndarray,
    z0: np.ndarray,
    decay: np.ndarray,
    gain: Any,
    threshold: Any,
    reset_to_zero: bool,
    code: int,
    k: tuple,
    spikes: np.ndarray,
    v_last: np.ndarray,
    derivative: np.ndarray,
) -> None:
    steps, batch, n = currents.shape
    keep = derivative.shape[0] > 0
    one = k[0]
    zero = one - one
    for b in prange(batch):
        v = v0[b].copy()
        z = z0[b].copy()
        for t in range(steps):
            for j in range(n):
                if reset_to_zero:
                    v[j] = (decay[j] * v[j]) * (one - z[j]) + currents[t, b, j] * gain
                else:
                    v[j] = (decay[j] * v[j] + currents[t, b, j] * gain) - z[j] * threshold
                x = v[j] - threshold
                z[j] = one if x >= zero else zero
                spikes[t, b, j] = z[j]
                if keep:
                    derivative[t, b, j] = _derivative(x, code, k)
        v_last[b] = v


@njit(parallel=True, cache=True, nogil=True)
def _backward(  # noqa: PLR0913
    grad_spikes: np.ndarray,
    grad_v_last: np.ndarray,
    derivative: np.ndarray,
    spikes: np.ndarray,
    z0: np.ndarray,
    decay: np.ndarray,
    gain: Any,
    reset_to_zero: bool,
    k: tuple,
    grad_currents: np.ndarray,
    grad_v0: np.ndarray,
) -> None:
    steps, batch, n = derivative.shape
    from_spikes = grad_spikes.shape[0] > 0
    from_last = grad_v_last.shape[0] > 0
    one = k[0]
    for b in prange(batch):
        dv = np.zeros(n, dtype=derivative.dtype)
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
                if not from_spikes:
                    dv[j] = later
                elif has_later:
                    dv[j] = grad_spikes[t, b, j] * derivative[t, b, j] + later
                else:
                    dv[j] = grad_spikes[t, b, j] * derivative[t, b, j]
            for j in range(n):
                grad_currents[t, b, j] = dv[j] * gain
        if grad_v0.shape[0] > 0:
            for j in range(n):
                if reset_to_zero:
                    grad_v0[b, j] = (dv[j] * (one - z0[b, j])) * decay[j]
                else:
                    grad_v0[b, j] = dv[j] * decay[j]


def fused_leaky_applies(
    currents: torch.Tensor, params: StepCoefficients, surrogate: Surrogate
) -> bool:
    """Whether :func:`fused_leaky` computes these steps: on the CPU, in float32 or float64,
    leaky neurons without refractory steps, a constant input gain, untrained time constants and
    a surrogate of :data:`SURROGATE_CODES`."""
    decay = params.mem_decay
    return (
        currents.device.type == "cpu"
        and currents.dtype in (torch.float32, torch.float64)
        and params.model == "leaky"
        and params.refractory_steps == 0
        and isinstance(params.input_gain, float)
        and not (isinstance(decay, torch.Tensor) and decay.requires_grad)
        and surrogate.type in SURROGATE_CODES
    )


def fused_leaky(
    currents: torch.Tensor, state: NeuronState, params: StepCoefficients, surrogate: Surrogate
) -> tuple[torch.Tensor, NeuronState]:
    """The spikes of all steps of ``currents`` ``(steps, batch, n)`` and the state after the
    last step, bitwise as the step-by-step torch operations give them (module docstring)."""
    decay = torch.as_tensor(params.mem_decay, dtype=currents.dtype).detach()
    decay = decay.expand(currents.shape[2]).contiguous()
    spikes, v = _FusedLeaky.apply(currents, state.v, state.z.detach(), decay, params, surrogate)
    return spikes, state._replace(v=v, z=spikes[-1])


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
        z0: torch.Tensor,
        decay: torch.Tensor,
        params: StepCoefficients,
        surrogate: Surrogate,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        use_numba_threads()
        gain, threshold, k = _constants(params, surrogate, currents.dtype)
        keep = any(ctx.needs_input_grad[:2])
        steps, batch, n = currents.shape
        spikes = currents.new_empty((steps, batch, n))
        v_last = currents.new_empty((batch, n))
        derivative = currents.new_empty((steps, batch, n) if keep else (0, 0, 0))
        reset_to_zero = params.reset != "subtract"
        _forward(
            currents.detach().contiguous().numpy(),
            v0.detach().contiguous().numpy(),
            z0.contiguous().numpy(),
            decay.numpy(),
            gain,
            threshold,
            reset_to_zero,
            SURROGATE_CODES[surrogate.type],
            k,
            spikes.numpy(),
            v_last.numpy(),
            derivative.numpy(),
        )
        ctx.save_for_backward(derivative, spikes, z0, decay)
        ctx.gain, ctx.reset_to_zero, ctx.k = gain, reset_to_zero, k
        ctx.set_materialize_grads(False)
        return spikes, v_last

    @staticmethod
    def backward(
        ctx: Any, grad_spikes: torch.Tensor | None, grad_v_last: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        derivative, spikes, z0, decay = ctx.saved_tensors
        use_numba_threads()
        empty = spikes.new_empty((0, 0))
        if grad_spikes is None:
            grad_spikes = spikes.new_empty((0, 0, 0))
        grad_v_last = empty if grad_v_last is None else grad_v_last
        grad_currents = torch.empty_like(spikes)
        grad_v0 = torch.empty_like(z0) if ctx.needs_input_grad[1] else empty
        _backward(
            grad_spikes.contiguous().numpy(),
            grad_v_last.contiguous().numpy(),
            derivative.numpy(),
            spikes.numpy(),
            z0.numpy(),
            decay.numpy(),
            ctx.gain,
            ctx.reset_to_zero,
            ctx.k,
            grad_currents.numpy(),
            grad_v0.numpy(),
        )
        grad_v0_out = grad_v0 if ctx.needs_input_grad[1] else None
        return grad_currents, grad_v0_out, None, None, None, None
