"""Numerical helpers of the tests: central finite differences for the gradient tests of the exact
first-spike rules, bitwise comparison of checkpoints."""

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


def assert_same(a: object, b: object, where: str = "checkpoint") -> None:
    """Bitwise equality of nested dicts, lists and tensors (NaN equals NaN), naming where they
    differ."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{k}]")
    elif isinstance(a, float) and a != a:
        assert b != b, where
    else:
        assert a == b, where
