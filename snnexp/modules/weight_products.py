"""The products of modules with trained weights, plain or in a fixed partition."""

from __future__ import annotations

import torch

from snnexp.functional import fixed_partition


class WeightProducts:
    """Mixin of the modules that multiply by trained weights. With ``fixed_partition`` on (the
    config's ``training.thread_independent``, set by
    :meth:`snnexp.modules.readout.SteppedReadoutNetwork.use_fixed_partition`) their large
    products run in parts fixed by the shapes (:mod:`snnexp.functional.fixed_partition`): inside
    :func:`snnexp.functional.threads.torch_single_threaded`, bitwise the same results with any
    number of CPU threads."""

    fixed_partition = False

    def product(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``x @ weight``."""
        if self.fixed_partition:
            return fixed_partition.linear(x, weight)
        return x @ weight
