r"""Leaky integrate-and-fire (1st order): v_t = alpha v_{t-1} + x_t - R_t with
alpha = exp(-dt / tau_mem)."""

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


def leaky_step(
    current: torch.Tensor, state: NeuronState, params: StepCoefficients, surrogate: Surrogate
) -> NeuronState:
    """One step: the membrane integrates the input current directly."""
    v = membrane_update(state.v, current, state.z.detach(), params)
    return fire(state._replace(v=v), params, surrogate)


MODEL = StepModel("leaky", leaky_step, "leaky integrate-and-fire: v_t = alpha v_{t-1} + x_t")
