r"""The parameters of the current-based LIF neuron, the one neuron of exact first-spike learning:

    C_m du/dt = -g_L (u - E_L) + I(t),      C_m = g_L tau_mem,      tau_syn dI/dt = -I

(threshold theta). The exact ET and DT math (:mod:`snnexp.functional.event`) and the
exact-propagator stepped simulator (:mod:`snnexp.functional.cuba_exact`) all take a
:class:`NeuronParams`. The time-stepped BPTT models (:mod:`snnexp.functional.stepped`) are other
models; their per-step :class:`~snnexp.functional.stepped.base.StepCoefficients` are computed
from time constants and dt, not a parameter set of this neuron.
"""

from __future__ import annotations

from typing import NamedTuple


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


def check_tau_ratio(params: NeuronParams, ratio: float, rule: str) -> None:
    """Refuse parameters whose tau_mem / tau_syn is not the rule's ``ratio``."""
    if abs(params.tau_mem - ratio * params.tau_syn) > 1e-9 * params.tau_syn:
        needed = "tau_syn" if ratio == 1 else f"{ratio:g} tau_syn"
        raise ValueError(
            f"{rule} needs tau_mem = {needed}, got tau_mem={params.tau_mem}, "
            f"tau_syn={params.tau_syn}"
        )
