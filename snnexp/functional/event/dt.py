r"""Exact first-spike times and gradients of the DT neuron (tau_mem = 2 tau_syn).

The neuron is the current-based LIF neuron of :mod:`snnexp.functional.neuron`:

    C_m du/dt = -g_L (u - E_L) + I(t),      C_m = g_L tau_mem
    tau_syn dI/dt = -I,                     I jumps by w_i at t_i

One input at t_i = 0 gives I = w e^{-t/tau_s} and, solving the linear ODE,

    g_L (u(t) - E_L) = w tau_s / (tau_m - tau_s) (e^{-t/tau_m} - e^{-t/tau_s}).

**DT** (tau_m = 2 tau_s, so tau_s / (tau_m - tau_s) = 1). With X = e^{-t/tau_m} the fast term is
e^{-(t - t_i)/tau_s} = X^2 e^{t_i/tau_s}, so while the causal set is the first k inputs in time
order, with c = g_L (theta - E_L) and

    a_k = sum_{i<=k} w_i e^{t_i/tau_s},     b_k = sum_{i<=k} w_i e^{t_i/tau_m},

the membrane is h_k(X) = g_L (u - E_L) = b_k X - a_k X^2 and the threshold condition is the
quadratic a_k X^2 - b_k X + c = 0. Time runs forward as X falls from 1 to 0. Only a_k > 0 can
cross (c > 0; for a_k <= 0, h_k <= 0 or h_k falls with time). h_k is then a downward parabola in X
with its maximum b_k^2 / (4 a_k) at X* = b_k / (2 a_k); the first crossing in time is the larger
root

    X = (b_k + sqrt(D_k)) / (2 a_k),   D_k = b_k^2 - 4 a_k c,   t = -tau_m ln X,

written without the cancellation of the other root form. As for ET, the crossing lies in the
interval [t_k, t_{k+1}) of the first k for which max h_k over it (h_k at X* clamped to
[X_{k+1}, X_k]) reaches c: cheap arithmetic on the cumulative sums, done by the chunked scan of
:mod:`snnexp.functional.event.scan` (this module supplies the DT formulas, :class:`DtRule`), and
the square root and logarithm are evaluated once per output.

**Gradients** (implicit function theorem at u(t_out) = theta). With d_i = (t_out - t_i) / tau_m
over the causal set and F = sum_i w_i (e^{-d_i} - e^{-2 d_i}) - c:

    dF/dt   = sum_i w_i (2 e^{-2 d_i} - e^{-d_i}) / tau_m = X sqrt(D) / tau_m
    dt/dw_i = -(e^{-d_i} - e^{-2 d_i}) / (dF/dt)
    dt/dt_i =  w_i (2 e^{-2 d_i} - e^{-d_i}) / (tau_m dF/dt)

Outputs that do not spike pass no gradient; ``max_dw_norm`` clips exactly as in the ET layer.
The PSP of a unit weight peaks at 1/4 (at t = tau_m ln 2), against 1/e for ET.
"""

from __future__ import annotations

import math

import torch

from snnexp.functional.event import kernels
from snnexp.functional.event.scan import exact_first_spikes, spike_times
from snnexp.functional.neuron import NeuronParams, check_tau_ratio

DEFAULT_DT_NEURON = NeuronParams(tau_syn=1.0, tau_mem=2.0)
DT_TAU_RATIO = 2.0


class DtRule:
    """DT (tau_mem = 2 tau_syn) for :mod:`snnexp.functional.event.scan`; x = t / tau_m.

    Causal set (a, b): h(X) = b X - a X^2 with X = e^{-x}, f_1 = e^{2 x_i}, f_2 = e^{x_i};
    crossing X = (b + sqrt(D)) / (2a), D = b^2 - 4ac, slope dh/dx = X sqrt(D);
    psp(d) = e^{-d} - e^{-2d} (peak at d = ln 2), drive(d) = 2 e^{-2d} - e^{-d}.
    """

    psp_peak = math.log(2.0)

    kernel = kernels.DT

    def __init__(self, params: NeuronParams) -> None:
        self.unit = params.tau_mem
        self.threshold = params.scaled_threshold

    def input_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """e^{2 x_i} and e^{x_i}, 0 for inputs that never spike."""
        exp_x = torch.exp(x).masked_fill_(torch.isinf(x), 0.0)
        return exp_x * exp_x, exp_x

    def crosses(
        self, a: torch.Tensor, b: torch.Tensor, start: torch.Tensor, end: torch.Tensor
    ) -> torch.Tensor:
        """max of h over X in [e^{-end}, e^{-start}] >= c: h at X* = b / 2a clamped there.

        An input that never spikes has the empty interval X = 0, where h = 0 < c.
        """
        peak = torch.clamp(b / (2.0 * a), min=torch.exp(-end), max=torch.exp(-start))
        return (a > 0) & ((b - a * peak) * peak >= self.threshold)

    def crossing(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x = -ln X at the larger root X and the slope X sqrt(D)."""
        sqrt_disc = torch.sqrt(torch.clamp(b * b - 4.0 * a * self.threshold, min=0.0))
        root = (b + sqrt_disc) / (2.0 * a)
        return -torch.log(root), root * sqrt_disc

    def psp(self, delay: torch.Tensor) -> torch.Tensor:
        """e^{-d} - e^{-2d}."""
        slow = torch.exp(-delay)
        return slow - slow * slow

    def psp_and_drive(self, delay: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """e^{-d} - e^{-2d} and 2 e^{-2d} - e^{-d}."""
        slow = torch.exp(-delay)
        fast = slow * slow
        return slow - fast, 2.0 * fast - slow


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
    check_tau_ratio(params, DT_TAU_RATIO, "first_spike_dt")
    return spike_times(input_times, weights, DtRule(params))


def first_spike_dt(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    params: NeuronParams = DEFAULT_DT_NEURON,
    max_dw_norm: float | None = None,
) -> torch.Tensor:
    """Differentiable exact DT first-spike times, (batch, n_inputs) x (n_inputs, n_outputs).

    Same interface as :func:`snnexp.functional.event.et.first_spike_et`; see the module
    docstring for the math. Gradients flow to ``weights`` and ``input_times``.
    """
    check_tau_ratio(params, DT_TAU_RATIO, "first_spike_dt")
    return exact_first_spikes(input_times, weights, DtRule(params), max_dw_norm)
