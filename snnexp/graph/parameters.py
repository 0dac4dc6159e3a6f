"""What the parameters of blocks must be: one check (a predicate and its wording for messages)
per parameter name, shared by every block type that has the parameter."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from snnexp.choices import RESETS
from snnexp.functional.stepped import NEURON_MODELS

Check = tuple[Callable[[Any], bool], str]
"""A predicate on a value and what it requires, as in "kernel must be an integer >= 1"."""


def positive_int(v: Any) -> bool:
    """An integer >= 1 (not a bool)."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def non_negative_int(v: Any) -> bool:
    """An integer >= 0 (not a bool)."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def positive_number(v: Any) -> bool:
    """A finite number > 0."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def finite_number(v: Any) -> bool:
    """A finite number (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def non_negative_number(v: Any) -> bool:
    """A finite number >= 0."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def boolean(v: Any) -> bool:
    """true or false."""
    return isinstance(v, bool)


PARAMETER_CHECKS: dict[str, Check] = {
    **dict.fromkeys(
        ("features", "channels", "kernel", "groups", "steps"),
        (positive_int, "an integer >= 1"),
    ),
    "stride": (lambda v: v is None or positive_int(v), "an integer >= 1"),
    "padding": (non_negative_int, "an integer >= 0"),
    "refractory_steps": (non_negative_int, "an integer >= 0"),
    "p": (lambda v: non_negative_number(v) and v < 1, "a number in [0, 1)"),
    **dict.fromkeys(
        ("tau_mem", "tau_syn", "tau_adapt", "resistance", "capacitance"),
        (positive_number, "a number > 0"),
    ),
    "threshold": (positive_number, "a number > 0"),
    "adapt_strength": (non_negative_number, "a number >= 0"),
    **dict.fromkeys(
        ("bias", "recurrent", "spiking", "learn_tau", "per_neuron_tau", "dynamic_threshold"),
        (boolean, "true or false"),
    ),
    "model": (lambda v: v in NEURON_MODELS, f"one of {', '.join(NEURON_MODELS)}"),
    "reset": (lambda v: v in RESETS, f"one of {', '.join(RESETS)}"),
    "bias_times": (
        lambda v: isinstance(v, list) and all(non_negative_number(t) for t in v),
        "a list of times >= 0",
    ),
}
"""What each block parameter must be (a block type adds checks of its own parameters in
:attr:`~snnexp.graph.blocks.BlockType.checks`)."""
