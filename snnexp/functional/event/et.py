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
interval, so the interval is found with cheap arithmetic on cumulative sums, and Lambert W is
evaluated once per output. The scan over the sorted inputs (chunked, over the outputs that have
not spiked yet) is :mod:`snnexp.functional.event.scan`; this module supplies the ET formulas
(:class:`EtRule`).

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

import torch

from snnexp.functional.event import kernels
from snnexp.functional.event.scan import exact_first_spikes, spike_times
from snnexp.functional.lambertw import lambertw0
from snnexp.functional.neuron import DEFAULT_NEURON, NeuronParams, check_tau_ratio


class EtRule:
    """ET (tau_mem = tau_syn = tau) for :mod:`snnexp.functional.event.scan`; x = t / tau.

    Causal set (a, b): f(x) = (a x - b) e^{-x}, peak at x* = 1 + b/a when a > 0, crossing
    x = b/a - W0(-(c/a) e^{b/a}), slope df/dx = a e^{-x} (1 + W0), psp(D) = D e^{-D},
    drive(D) = e^{-D} (1 - D); psp peaks at D = 1.
    """

    psp_peak = 1.0

    kernel = kernels.ET

    def __init__(self, params: NeuronParams) -> None:
        self.unit = params.tau_syn
        self.threshold = params.scaled_threshold

    def input_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """e^{x_i} and x_i e^{x_i}, 0 for inputs that never spike."""
        exp_x = torch.exp(x).masked_fill_(torch.isinf(x), 0.0)
        return exp_x, x.nan_to_num(posinf=0.0) * exp_x

    def crosses(
        self, a: torch.Tensor, b: torch.Tensor, start: torch.Tensor, end: torch.Tensor
    ) -> torch.Tensor:
        """max of f on [start, end] >= c: f at the peak clamped to the interval (NaN -> False)."""
        peak = torch.div(b, a).add_(1.0).clamp_(min=start, max=end)
        value = (a * peak).sub_(b).mul_(peak.neg_().exp_())
        return (value >= self.threshold) & (a > 0)

    def crossing(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x = b/a - W0(z) and the slope a e^{-x} (1 + W0(z))."""
        b_over_a = b / a
        z = -(self.threshold / a) * torch.exp(b_over_a)
        w0 = lambertw0(torch.clamp(z, min=-math.exp(-1.0)))
        x = b_over_a - w0
        return x, a * torch.exp(-x) * (1.0 + w0)

    def psp(self, delay: torch.Tensor) -> torch.Tensor:
        """D e^{-D}."""
        return delay * torch.exp(-delay)

    def psp_and_drive(self, delay: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D e^{-D} and e^{-D} (1 - D)."""
        decay = torch.exp(-delay)
        return delay * decay, decay - delay * decay


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
    check_tau_ratio(params, 1.0, "first_spike_et")
    return spike_times(input_times, weights, EtRule(params))


def first_spike_et(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    params: NeuronParams = DEFAULT_NEURON,
    max_dw_norm: float | None = None,
) -> torch.Tensor:
    """Differentiable exact ET first-spike times, (batch, n_inputs) x (n_inputs, n_outputs).

    See the module docstring for the math. Gradients flow to ``weights`` and ``input_times``.
    """
    check_tau_ratio(params, 1.0, "first_spike_et")
    return exact_first_spikes(input_times, weights, EtRule(params), max_dw_norm)
