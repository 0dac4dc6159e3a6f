"""Times on a grid of steps of length dt, computed the same way on every device."""

from __future__ import annotations

import torch


def in_steps(times: torch.Tensor, dt: float) -> torch.Tensor:
    """t / dt, correctly rounded on the CPU and on GPUs alike.

    CUDA divides a tensor by a Python number as a multiplication by the number's reciprocal,
    which rounds differently: t = 0.3, dt = 0.1 gives 3.0 there and 2.9999999999999996 on the
    CPU, so that a spike on a step boundary (a bias spike at 0.3, say) would fall into another
    step on a GPU. Dividing by a tensor on the same device divides exactly on both (made with
    ``torch.full``, a fill on the device rather than a copy from the host).
    """
    return times / torch.full((), dt, dtype=times.dtype, device=times.device)
