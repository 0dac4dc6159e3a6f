"""The DEEP R invariants that hold after every step, shared by the CPU and GPU tests."""

from __future__ import annotations

import torch

from snnexp.rules.deep_r import DeepR


def assert_step_invariants(
    weights: list[torch.nn.Parameter], deep_r: DeepR, signs_at_init: list[torch.Tensor]
) -> None:
    """Signs never change, dormant weights are exactly 0, active ones carry their sign."""
    for weight, sign, first, active in zip(
        weights, deep_r.signs, signs_at_init, deep_r.active, strict=True
    ):
        assert torch.equal(sign, first)
        assert torch.all(weight[~active] == 0)
        assert torch.all(sign[active] * weight[active] > 0)
