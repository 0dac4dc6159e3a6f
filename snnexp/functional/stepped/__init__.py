"""Time-stepped neuron models for BPTT, one module per model, and their registry.

Each model is a module ``snnexp.functional.stepped.<name>`` whose ``MODEL`` is a
:class:`~snnexp.functional.stepped.base.StepModel` (its step function, its states and how its
membrane coefficients follow from the time constants). :data:`NEURON_MODELS` registers them; the
config (``model.neuron.type``), the neurons block and the modules take their choices from it.

This module does not import torch, so that the config can read the names cheaply.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snnexp.functional.stepped.base import StepModel

NEURON_MODELS = ("synaptic", "leaky", "alif", "alpha", "lapicque", "iaf")
"""The registered models, in the order the documentation lists them (the first-spike neuron
``synaptic`` first)."""


@functools.cache
def step_model(name: str) -> StepModel:
    """The registered model ``name``; ValueError naming the available ones otherwise."""
    if name not in NEURON_MODELS:
        raise ValueError(f"unknown neuron model {name!r}; available: {', '.join(NEURON_MODELS)}")
    return importlib.import_module(f"{__name__}.{name}").MODEL
