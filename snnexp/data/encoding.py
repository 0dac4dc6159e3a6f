"""Spike encoders: turn data values into input spike times."""

from __future__ import annotations

import numpy as np
import torch


def latency_encode(
    values: np.ndarray | torch.Tensor, t_early: float = 0.15, t_late: float = 2.0
) -> torch.Tensor:
    """Latency (time-to-first-spike) code: one spike per value ``v`` in [0, 1] at

        t = t_early + v (t_late - t_early),

    so ``v = 0`` spikes at ``t_early`` and ``v = 1`` at ``t_late``. Returns float64 spike times of
    the same shape as ``values``. Callers that want bright pixels early pass ``1 - intensity``.
    """
    v = torch.as_tensor(values).to(torch.float64)
    return t_early + v * (t_late - t_early)
