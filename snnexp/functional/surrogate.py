r"""The spike non-linearity with surrogate derivatives, for BPTT through time-stepped neurons.

Forward, a neuron spikes when its distance to threshold ``x = v - theta`` is non-negative:
``z = H(x)`` (Heaviside). Backward, the derivative of H (a Dirac delta) is replaced by a smooth
pseudo-derivative of slope parameter ``k`` and overall ``dampening`` gamma:

    fast_sigmoid  dz/dx = gamma / (1 + k |x|)^2                       (SuperSpike; snnTorch)
    arctan        dz/dx = gamma (k / 2) / (1 + (pi k x / 2)^2)         (snnTorch's atan)
    triangle      dz/dx = gamma k max(0, 1 - k |x|)                   (LSNN's piecewise linear)

The LSNN papers use ``triangle`` with gamma = 0.3 on the voltage in units of the threshold
(k = 1 / theta).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

SurrogateDerivative = Callable[[torch.Tensor, float], torch.Tensor]


def fast_sigmoid_derivative(x: torch.Tensor, slope: float) -> torch.Tensor:
    """1 / (1 + k |x|)^2."""
    return 1.0 / (1.0 + slope * x.abs()) ** 2


def arctan_derivative(x: torch.Tensor, slope: float) -> torch.Tensor:
    """(k / 2) / (1 + (pi k x / 2)^2), the derivative of arctan(pi k x / 2) / pi."""
    return (slope / 2) / (1.0 + (math.pi * slope * x / 2) ** 2)


def triangle_derivative(x: torch.Tensor, slope: float) -> torch.Tensor:
    """k max(0, 1 - k |x|): a triangle of area 1 and half-width 1 / k."""
    return slope * torch.clamp(1.0 - slope * x.abs(), min=0.0)


SURROGATE_DERIVATIVES: dict[str, SurrogateDerivative] = {
    "fast_sigmoid": fast_sigmoid_derivative,
    "arctan": arctan_derivative,
    "triangle": triangle_derivative,
}


@dataclass(frozen=True)
class Surrogate:
    """Which pseudo-derivative replaces dH/dx, its slope k and its dampening gamma."""

    type: str = "fast_sigmoid"
    slope: float = 25.0
    dampening: float = 1.0

    def __post_init__(self) -> None:
        if self.type not in SURROGATE_DERIVATIVES:
            raise ValueError(
                f"unknown surrogate {self.type!r}; available: {', '.join(SURROGATE_DERIVATIVES)}"
            )

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """gamma * pseudo-derivative(x)."""
        return self.dampening * SURROGATE_DERIVATIVES[self.type](x, self.slope)


class _SurrogateSpike(torch.autograd.Function):
    """H(x) forward, ``surrogate.derivative(x)`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None


def spike(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """Spikes z = H(x) of the distance to threshold ``x``, differentiable through ``surrogate``."""
    if not torch.is_grad_enabled() or not x.requires_grad:
        return (x >= 0).to(x.dtype)
    return _SurrogateSpike.apply(x, surrogate)
