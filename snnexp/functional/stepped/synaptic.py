r"""Current-based LIF (2nd order), the neuron of exact first-spike learning:

    i_t = alpha_s i_{t-1} + x_t,     v_t = alpha v_{t-1} + i_t - R_t

with alpha_s = exp(-dt / tau_syn), alpha = exp(-dt / tau_mem).
"""

from __future__ import annotations

import torch

from snnexp.functional.stepped.base import (
    NeuronState,
    StepCoefficients,
    StepModel,
    fire,
    membrane_update,
)
from snnexp.functional.surrogate import Surrogate


def current_step(
    current: torch.Tensor,
    state: NeuronState,
    params: StepCoefficients,
    surrogate: Surrogate,
    syn_decay: float | torch.Tensor,
) -> NeuronState:
    """One step of a current-based neuron whose synaptic current decays by ``syn_decay``."""
    assert state.i is not None
    i = syn_decay * state.i + current
    v = membrane_update(state.v, i, state.z.detach(), params)
    return fire(state._replace(v=v, i=i), params, surrogate)


def synaptic_step(
    current: torch.Tensor, state: NeuronState, params: StepCoefficients, surrogate: Surrogate
) -> NeuronState:
    """One step: an exponential synaptic current feeds the membrane."""
    return current_step(current, state, params, surrogate, params.syn_decay)


MODEL = StepModel(
    "synaptic",
    synaptic_step,
    "current-based LIF: an exponential synaptic current (tau_syn) feeds v",
    has_current=True,
)
