r"""Exact first-spike times and gradients of the DT neuron (tau_mem = 2 tau_syn).

The neuron is the current-based LIF neuron of :mod:`snnexp.neurons.first_spike`:

    C_m du/dt = -g_L (u - E_L) + I(t),      C_m = g_L tau_mem
    tau_syn dI/dt = -I,                     I jumps by w_i at t_i

One input at t_i = 0 gives I = w e^{-t/tau_s} and, solving the linear ODE,

    g_L (u(t) - E_L) = w tau_s / (tau_m - tau_s) (e^{-t/tau_m} - e^{-t/tau_s}).

**DT** (tau_m = 2 tau_s, so tau_s / (tau_m - tau_s) = 1). With x = e^{-t/tau_m} the fast term is
e^{-(t - t_i)/tau_s} = x^2 e^{t_i/tau_s}, so while the causal set is the first k inputs in time
order, with c = g_L (theta - E_L) and

    a_k = sum_{i<=k} w_i e^{t_i/tau_s},     b_k = sum_{i<=k} w_i e^{t_i/tau_m},

the membrane is h_k(x) = g_L (u - E_L) = b_k x - a_k x^2 and the threshold condition is the
quadratic a_k x^2 - b_k x + c = 0. Time runs forward as x falls from 1 to 0. Only a_k > 0 can
cross (c > 0; for a_k <= 0, h_k <= 0 or h_k falls with time). h_k is then a downward parabola in x
with its maximum b_k^2 / (4 a_k) at x* = b_k / (2 a_k); the first crossing in time is the larger
root

    x = (b_k + sqrt(b_k^2 - 4 a_k c)) / (2 a_k),     t = tau_m ln(2 a_k / (b_k + sqrt(D_k))),

written without the cancellation of the other root form. As for ET, the crossing lies in the
interval [t_k, t_{k+1}) of the first k for which max h_k over it (h_k at x* clamped to
[x_{k+1}, x_k]) reaches c; this is cheap arithmetic on O(batch x inputs x outputs) cumulative
sums, and the square root and logarithm are evaluated once per output.

**Gradients** (implicit function theorem at u(t_out) = theta). With d_i = (t_out - t_i) / tau_m
over the causal set and F = sum_i w_i (e^{-d_i} - e^{-2 d_i}) - c:

    dF/dt   = sum_i w_i (2 e^{-2 d_i} - e^{-d_i}) / tau_m = x sqrt(D) / tau_m
    dt/dw_i = -(e^{-d_i} - e^{-2 d_i}) / (dF/dt)
    dt/dt_i =  w_i (2 e^{-2 d_i} - e^{-d_i}) / (tau_m dF/dt)

Outputs that do not spike pass no gradient; ``max_dw_norm`` clips exactly as in the ET layer.
The PSP of a unit weight peaks at 1/4 (at t = tau_m ln 2), against 1/e for ET.
"""

from __future__ import annotations

import torch

from snnexp.neurons.first_spike import CausalSums, NeuronParams, _sorted_inputs

DEFAULT_DT_NEURON = NeuronParams(tau_syn=1.0, tau_mem=2.0)
DT_TAU_RATIO = 2.0


def _dt_causal_sums(
    input_times: torch.Tensor, weights: torch.Tensor, params: NeuronParams
) -> CausalSums:
    """a_k, b_k of the interval that holds each output's first crossing (see module docstring).

    Non-spiking inputs (+inf) sort last, add nothing to the sums and have the empty interval
    x = 0, where h_k = 0 < c.
    """
    s, exp_s, order = _sorted_inputs(input_times, params.tau_mem)
    sorted_weights = weights[order]
    b = torch.cumsum(sorted_weights * exp_s.unsqueeze(-1), dim=1)
    a = torch.cumsum(sorted_weights * (exp_s * exp_s).unsqueeze(-1), dim=1)

    x_start = torch.exp(-s)
    x_end = torch.cat([x_start[:, 1:], torch.zeros_like(x_start[:, :1])], dim=1).unsqueeze(-1)
    peak = torch.clamp(b / (2.0 * a), min=x_end, max=x_start.unsqueeze(-1))
    crosses = (a > 0) & ((b - a * peak) * peak >= params.scaled_threshold)

    spikes, first = torch.max(crosses.to(torch.uint8), dim=1, keepdim=True)
    return CausalSums(
        a=torch.gather(a, 1, first).squeeze(1),
        b=torch.gather(b, 1, first).squeeze(1),
        spikes=spikes.squeeze(1).bool(),
    )


def _dt_crossing(sums: CausalSums, params: NeuronParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike times t = tau_m ln(2a / (b + sqrt(D))) (+inf where no crossing) and dF/dt there
    (1 where no crossing)."""
    safe_a = torch.where(sums.spikes, sums.a, torch.ones_like(sums.a))
    safe_b = torch.where(sums.spikes, sums.b, torch.ones_like(sums.b))
    disc = safe_b * safe_b - 4.0 * safe_a * params.scaled_threshold
    sqrt_disc = torch.sqrt(torch.clamp(disc, min=0.0))
    x = (safe_b + sqrt_disc) / (2.0 * safe_a)
    times = -params.tau_mem * torch.log(x)
    slope = torch.where(sums.spikes, x * sqrt_disc / params.tau_mem, torch.ones_like(x))
    return torch.where(sums.spikes, times, torch.full_like(times, torch.inf)), slope


def dt_spike_times(
    input_times: torch.Tensor, weights: torch.Tensor, params: NeuronParams = DEFAULT_DT_NEURON
) -> torch.Tensor:
    """Exact first output spike times of a DT layer.

    Args:
        input_times: (batch, n_inputs) input spike times, +inf for inputs that never spike.
        weights: (n_inputs, n_outputs).
        params: neuron parameters; tau_mem must equal 2 tau_syn.

    Returns:
        (batch, n_outputs) first-spike times, +inf where the membrane never reaches threshold.
    """
    _check_ratio(params)
    times, _ = _dt_crossing(_dt_causal_sums(input_times, weights, params), params)
    return times


def dt_backward(
    grad_out: torch.Tensor,
    input_times: torch.Tensor,
    weights: torch.Tensor,
    out_times: torch.Tensor,
    slope: torch.Tensor,
    params: NeuronParams,
    max_dw_norm: float | None = None,
    need_input_grad: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Vector-Jacobian products of the DT layer (see module docstring for the formulas).

    Returns (dL/dinput_times or None, dL/dweights).
    """
    spiking = torch.isfinite(out_times)
    grad = torch.where(spiking, torch.nan_to_num(grad_out, nan=0.0) / slope, 0.0)
    grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)

    far = torch.finfo(input_times.dtype).max / 8
    safe_out = torch.where(spiking, out_times, -far)
    safe_in = torch.nan_to_num(input_times, posinf=far)
    delay = (safe_out.unsqueeze(1) - safe_in.unsqueeze(2)) / params.tau_mem
    causal = delay > 0
    slow = torch.exp(-delay.clamp_(min=0.0)).mul_(causal)
    fast = slow * slow
    psp = slow - fast

    weight_grad_factor = grad
    if max_dw_norm is not None:
        per_sample_max = psp.amax(dim=1) * grad.abs()
        weight_grad_factor = torch.where(per_sample_max > max_dw_norm, 0.0, grad)
    grad_weights = -torch.einsum("bij,bj->ij", psp, weight_grad_factor)

    grad_inputs = None
    if need_input_grad:
        drive = fast.mul_(2.0).sub_(slow).mul_(weights)
        grad_inputs = torch.einsum("bij,bj->bi", drive, grad) / params.tau_mem
    return grad_inputs, grad_weights


class _FirstSpikeDT(torch.autograd.Function):
    """Autograd glue: exact forward, implicit-function-theorem backward."""

    @staticmethod
    def forward(ctx, input_times, weights, params, max_dw_norm):  # noqa: D102
        out_times, slope = _dt_crossing(_dt_causal_sums(input_times, weights, params), params)
        ctx.params = params
        ctx.max_dw_norm = max_dw_norm
        ctx.save_for_backward(input_times, weights, out_times, slope)
        return out_times

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        input_times, weights, out_times, slope = ctx.saved_tensors
        grad_inputs, grad_weights = dt_backward(
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


def _check_ratio(params: NeuronParams) -> None:
    if abs(params.tau_mem - DT_TAU_RATIO * params.tau_syn) > 1e-9 * params.tau_syn:
        raise ValueError(
            f"first_spike_dt needs tau_mem = 2 tau_syn, got tau_mem={params.tau_mem}, "
            f"tau_syn={params.tau_syn}"
        )


def first_spike_dt(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    params: NeuronParams = DEFAULT_DT_NEURON,
    max_dw_norm: float | None = None,
) -> torch.Tensor:
    """Differentiable exact DT first-spike times, (batch, n_inputs) x (n_inputs, n_outputs).

    Same interface as :func:`snnexp.neurons.first_spike.first_spike_et`; see the module
    docstring for the math. Gradients flow to ``weights`` and ``input_times``.
    """
    _check_ratio(params)
    return _FirstSpikeDT.apply(input_times, weights, params, max_dw_norm)
