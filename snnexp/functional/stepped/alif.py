r"""Adaptive LIF (LSNN, Bellec et al. 2018): leaky, with an adaptive threshold

    a_t = rho a_{t-1} + (1 - rho) z_{t-1},     theta_t = theta + beta a_t

with rho = exp(-dt / tau_adapt) and beta the adaptation strength (per neuron: 0 for the regular
neurons of a mixed layer).
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


def alif_step(
    current: torch.Tensor, state: NeuronState, params: StepCoefficients, surrogate: Surrogate
) -> NeuronState:
    """One step: the leaky membrane, and the adaptation driven by the previous step's spikes."""
    assert state.a is not None
    fired = state.z.detach()
    v = membrane_update(state.v, current, fired, params)
    a = params.adapt_decay * state.a + (1.0 - params.adapt_decay) * fired
    return fire(state._replace(v=v, a=a), params, surrogate)


MODEL = StepModel(
    "alif",
    alif_step,
    "adaptive LIF (LSNN): the threshold rises by adapt_strength x a after spikes",
    adaptive=True,
)
