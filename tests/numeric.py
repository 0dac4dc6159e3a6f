"""Central finite differences shared by the gradient tests of the exact first-spike rules."""

from __future__ import annotations

from collections.abc import Callable

import torch


def numeric_gradient(
    objective: Callable[[torch.Tensor], torch.Tensor], at: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """d objective / d at by central differences; entries that are not finite stay 0."""
    grad = torch.zeros_like(at)
    for index in zip(*torch.nonzero(torch.isfinite(at), as_tuple=True), strict=True):
        plus, minus = at.clone(), at.clone()
        plus[index] += eps
        minus[index] -= eps
        grad[index] = (objective(plus) - objective(minus)) / (2 * eps)
    return grad
