r"""Integrate-and-fire without leak: v_t = v_{t-1} + x_t - R_t (alpha = 1, g = 1).

The neuron of ANN -> SNN conversion (Rueckauer et al. 2017): with the reset by subtraction and a
constant current 0 <= x <= theta its spike count over T steps is floor(T x / theta) (at most one
spike per step: above theta it fires every step), so its rate codes min(max(0, x), theta) /
theta.
"""

from __future__ import annotations

from snnexp.functional.stepped.base import MembraneConstants, Scalar, StepModel
from snnexp.functional.stepped.leaky import leaky_step


def no_leak(constants: MembraneConstants) -> tuple[Scalar, Scalar]:
    """(alpha, g) = (1, 1): the membrane keeps what it integrated."""
    return 1.0, 1.0


MODEL = StepModel(
    "iaf",
    leaky_step,
    "integrate-and-fire without leak: v_t = v_{t-1} + x_t",
    membrane=no_leak,
)
