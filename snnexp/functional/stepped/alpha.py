r"""The alpha neuron: the synaptic model with alpha_s = alpha, so that the response of v to one
input spike is (t / dt + 1) alpha^{t / dt}, the alpha-function PSP (t / tau) e^{-t / tau}."""

from __future__ import annotations

import torch

from snnexp.functional.stepped.base import NeuronState, StepCoefficients, StepModel
from snnexp.functional.stepped.synaptic import current_step
from snnexp.functional.surrogate import Surrogate


def alpha_step(
    current: torch.Tensor, state: NeuronState, params: StepCoefficients, surrogate: Surrogate
) -> NeuronState:
    """One step: the synaptic current decays with the membrane's factor."""
    return current_step(current, state, params, surrogate, params.mem_decay)


MODEL = StepModel(
    "alpha",
    alpha_step,
    "alpha-function PSP: the synaptic current decays with tau_mem",
    has_current=True,
)
