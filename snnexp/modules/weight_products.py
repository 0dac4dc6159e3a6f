"""The products of modules with trained weights, plain or in a fixed partition."""

from __future__ import annotations

import torch

from snnexp.functional import fixed_partition


class WeightProducts:
    """Mixin of the modules that multiply by trained weights. With ``fixed_partition`` on (the
    config's ``training.thread_independent``, set by
    :meth:`snnexp.modules.readout.SteppedReadoutNetwork.use_fixed_partition`) their products
    run in parts fixed by the shapes (:mod:`snnexp.functional.fixed_partition`): bitwise the
    same results with any number of CPU threads."""

    fixed_partition = False

    def product(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``x @ weight``."""
        if self.fixed_partition:
            return fixed_partition.linear(x, weight)
        return x @ weight

    def with_bias(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``x + bias`` (broadcast over the leading dimensions of ``x``)."""
        if self.fixed_partition:
            return x + fixed_partition.expand_bias(bias, x.shape)
        return x + bias

    def expanded_bias(self, bias: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """``bias`` expanded to ``shape``."""
        if self.fixed_partition:
            return fixed_partition.expand_bias(bias, shape)
        return bias.expand(shape)
