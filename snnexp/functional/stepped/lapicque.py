r"""Lapicque's RC neuron: v_t = (1 - dt / (R C)) v_{t-1} + (dt / C) x_t - R_t (an Euler step of
C dv/dt = -v / R + x)."""

from __future__ import annotations

from snnexp.functional.stepped.base import MembraneConstants, Scalar, StepModel
from snnexp.functional.stepped.leaky import leaky_step


def rc_membrane(constants: MembraneConstants) -> tuple[Scalar, Scalar]:
    """(alpha, g) = (1 - dt / (R C), dt / C)."""
    alpha = 1.0 - constants.dt / (constants.resistance * constants.capacitance)
    return alpha, constants.dt / constants.capacitance


MODEL = StepModel(
    "lapicque",
    leaky_step,
    "Lapicque's RC circuit: v_t = (1 - dt/(R C)) v_{t-1} + (dt / C) x_t",
    membrane=rc_membrane,
)
