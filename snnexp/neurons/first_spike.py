r"""Exact first-spike times of current-based LIF neurons and their exact gradients.

The neuron (DESIGN.md), with membrane u, synaptic current I, inputs i spiking once at t_i:

    C_m du/dt = -g_L (u - E_L) + I(t),      C_m = g_L tau_mem
    tau_syn dI/dt = -I,                     I jumps by w_i at t_i

Only the first threshold crossing u(t) = theta counts; a neuron that never crosses has t = +inf.

**ET** (tau_mem = tau_syn = tau). With D_i = (t - t_i) / tau the membrane is

    g_L (u(t) - E_L) = sum_{t_i < t} w_i D_i exp(-D_i).

While the causal set is the first k inputs in time order, with x = t / tau,
a_k = sum_{i<=k} w_i e^{x_i}, b_k = sum_{i<=k} w_i x_i e^{x_i} and c = g_L (theta - E_L), this is
f_k(x) = (a_k x - b_k) e^{-x}, which (for a_k > 0) rises to a single maximum at
x* = 1 + b_k / a_k. Its rising crossing of c is

    t = tau (b_k / a_k - W0(z_k)),     z_k = -(c / a_k) exp(b_k / a_k),

W0 the principal branch of Lambert W. The crossing lies in the interval [t_k, t_{k+1}) of the
first k for which max_{[t_k, t_{k+1}]} f_k >= c; that maximum is f_k at x* clamped to the
interval, so the interval is found with cheap arithmetic on O(batch x inputs x outputs) cumulative
sums (never the (batch, N, N, M) expansion of the published code) and Lambert W is evaluated
once per output.

**Gradients** (implicit function theorem at u(t_out) = theta, Goeltz, Kriener et al. 2021).
With F(t) = sum_i w_i D_i e^{-D_i} - c over the causal set (t_i < t_out):

    dF/dt   = sum_i w_i e^{-D_i} (1 - D_i) / tau = a e^{-x} (1 + W0(z)) / tau
    dt/dw_i = -D_i e^{-D_i} / (dF/dt)
    dt/dt_i =  w_i e^{-D_i} (1 - D_i) / (tau dF/dt)

Outputs that do not spike pass no gradient. ``max_dw_norm`` reproduces the published per-output
clipping: where max_i |dL/dw_ij| of one sample exceeds it (a neuron grazing the threshold, where
dF/dt -> 0), that sample's weight gradient for output j is dropped; the gradient passed to the
inputs is kept.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from snnexp.neurons.lambertw import lambertw0


class NeuronParams(NamedTuple):
    """Parameters of the current-based LIF neuron (times in the same unit as spike times)."""

    tau_syn: float = 1.0
    tau_mem: float = 1.0
    threshold: float = 1.0
    leak: float = 0.0
    g_leak: float = 1.0

    @property
    def scaled_threshold(self) -> float:
        """c = g_L (theta - E_L), the threshold in units of summed weights."""
        return self.g_leak * (self.threshold - self.leak)


DEFAULT_NEURON = NeuronParams()


class CausalSums(NamedTuple):
    """Per-output cumulative sums over the inputs in time order, at the crossing interval."""

    a: torch.Tensor
    b: torch.Tensor
    spikes: torch.Tensor


def _sort_rows(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row ascending; (sorted values, indices).

    On the CPU NumPy's sort is used: for rows of a hundred or more elements it is several times
    faster than torch.sort there (measured with torch 2.14 on 2 cores).
    """
    if values.device.type != "cpu":
        return torch.sort(values, dim=1)
    order = np.argsort(values.numpy(), axis=1)
    order_t = torch.from_numpy(order)
    return torch.gather(values, 1, order_t), order_t


def _sorted_inputs(
    input_times: torch.Tensor, tau: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs sorted by time: (x = t/tau with +inf kept, e^x with 0 for +inf, sort indices)."""
    x, order = _sort_rows(input_times.detach() / tau)
    exp_x = torch.exp(x).masked_fill_(torch.isinf(x), 0.0)
    return x, exp_x, order


def _et_causal_sums(
    input_times: torch.Tensor, weights: torch.Tensor, params: NeuronParams
) -> CausalSums:
    """a_k, b_k of the interval that holds each output's first crossing (see module docstring).

    Non-spiking inputs (+inf) sort last and add nothing to the sums; their intervals never hold
    a crossing because f_k(+inf) is NaN, and NaN compares false.
    """
    x, exp_x, order = _sorted_inputs(input_times, params.tau_syn)
    sorted_weights = weights[order]
    a = torch.cumsum(sorted_weights * exp_x.unsqueeze(-1), dim=1)
    b = torch.cumsum(sorted_weights * (x.nan_to_num(posinf=0.0) * exp_x).unsqueeze(-1), dim=1)

    interval_start = x.unsqueeze(-1)
    interval_end = torch.cat([x[:, 1:], torch.full_like(x[:, :1], torch.inf)], dim=1).unsqueeze(-1)
    peak = torch.clamp(b / a + 1.0, min=interval_start, max=interval_end)
    crosses = (a > 0) & ((a * peak - b) * torch.exp(-peak) >= params.scaled_threshold)

    spikes, first = torch.max(crosses.to(torch.uint8), dim=1, keepdim=True)
    return CausalSums(
        a=torch.gather(a, 1, first).squeeze(1),
        b=torch.gather(b, 1, first).squeeze(1),
        spikes=spikes.squeeze(1).bool(),
    )


def _et_crossing(sums: CausalSums, params: NeuronParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike times t = tau (b/a - W0(z)) (+inf where no crossing) and W0(z)."""
    safe_a = torch.where(sums.spikes, sums.a, torch.ones_like(sums.a))
    b_over_a = torch.where(sums.spikes, sums.b / safe_a, torch.zeros_like(sums.a))
    z = -(params.scaled_threshold / safe_a) * torch.exp(b_over_a)
    w0 = lambertw0(torch.clamp(z, min=-math.exp(-1.0)))
    times = params.tau_syn * (b_over_a - w0)
    return torch.where(sums.spikes, times, torch.full_like(times, torch.inf)), w0


def et_spike_times(
    input_times: torch.Tensor, weights: torch.Tensor, params: NeuronParams
) -> torch.Tensor:
    """Exact first output spike times of an ET layer.

    Args:
        input_times: (batch, n_inputs) input spike times, +inf for inputs that never spike.
        weights: (n_inputs, n_outputs).
        params: neuron parameters; tau_mem must equal tau_syn.

    Returns:
        (batch, n_outputs) first-spike times, +inf where the membrane never reaches threshold.
    """
    times, _ = _et_crossing(_et_causal_sums(input_times, weights, params), params)
    return times


def _membrane_slope(
    sums: CausalSums, out_times: torch.Tensor, w0: torch.Tensor, params: NeuronParams
) -> torch.Tensor:
    """dF/dt at the crossing: a e^{-x} (1 + W0(z)) / tau (1 where no spike)."""
    x_out = torch.where(sums.spikes, out_times / params.tau_syn, torch.zeros_like(out_times))
    slope = sums.a * torch.exp(-x_out) * (1.0 + w0) / params.tau_syn
    return torch.where(sums.spikes, slope, torch.ones_like(slope))


def et_backward(
    grad_out: torch.Tensor,
    input_times: torch.Tensor,
    weights: torch.Tensor,
    out_times: torch.Tensor,
    slope: torch.Tensor,
    params: NeuronParams,
    max_dw_norm: float | None = None,
    need_input_grad: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Vector-Jacobian products of the ET layer (see module docstring for the formulas).

    Returns (dL/dinput_times or None, dL/dweights).
    """
    spiking = torch.isfinite(out_times)
    grad = torch.where(spiking, torch.nan_to_num(grad_out, nan=0.0) / slope, 0.0)
    grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)

    far = torch.finfo(input_times.dtype).max / 8
    safe_out = torch.where(spiking, out_times, -far)
    safe_in = torch.nan_to_num(input_times, posinf=far)
    delay = (safe_out.unsqueeze(1) - safe_in.unsqueeze(2)) / params.tau_syn
    causal = delay > 0
    delay.clamp_(min=0.0)
    kernel = torch.exp(-delay).mul_(causal)
    psp = kernel * delay

    weight_grad_factor = grad
    if max_dw_norm is not None:
        per_sample_max = psp.amax(dim=1) * grad.abs()
        weight_grad_factor = torch.where(per_sample_max > max_dw_norm, 0.0, grad)
    grad_weights = -torch.einsum("bij,bj->ij", psp, weight_grad_factor)

    grad_inputs = None
    if need_input_grad:
        drive = kernel.mul_(1.0 - delay).mul_(weights)
        grad_inputs = torch.einsum("bij,bj->bi", drive, grad) / params.tau_syn
    return grad_inputs, grad_weights


class _FirstSpikeET(torch.autograd.Function):
    """Autograd glue: exact forward, implicit-function-theorem backward."""

    @staticmethod
    def forward(ctx, input_times, weights, params, max_dw_norm):  # noqa: D102
        sums = _et_causal_sums(input_times, weights, params)
        out_times, w0 = _et_crossing(sums, params)
        ctx.params = params
        ctx.max_dw_norm = max_dw_norm
        slope = _membrane_slope(sums, out_times, w0, params)
        ctx.save_for_backward(input_times, weights, out_times, slope)
        return out_times

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        input_times, weights, out_times, slope = ctx.saved_tensors
        grad_inputs, grad_weights = et_backward(
            grad_out,
            input_times,
            weights,
            out_times,
            slope,
            ctx.params,
            ctx.max_dw_norm,
            need_input_grad=ctx.needs_input_grad[0],
        )
        return grad_inputs, grad_weights, None, None


def first_spike_et(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    params: NeuronParams = DEFAULT_NEURON,
    max_dw_norm: float | None = None,
) -> torch.Tensor:
    """Differentiable exact ET first-spike times, (batch, n_inputs) x (n_inputs, n_outputs).

    See the module docstring for the math. Gradients flow to ``weights`` and ``input_times``.
    """
    if abs(params.tau_mem - params.tau_syn) > 1e-9 * params.tau_syn:
        raise ValueError(
            f"first_spike_et needs tau_mem = tau_syn, got tau_mem={params.tau_mem}, "
            f"tau_syn={params.tau_syn}"
        )
    return _FirstSpikeET.apply(input_times, weights, params, max_dw_norm)
