r"""Data-based weight normalisation (Rueckauer et al. 2017, Frontiers in Neuroscience 11:682,
section 2.2.1, with the robust percentile of section 2.3).

For every hidden ``neurons`` block l let lambda_l be the P-th percentile of the positive ANN
activations a^l on calibration samples (lambda_0 = 1 for input intensities in [0, 1]; the
label layer keeps lambda_L = 1, which leaves its arg max unchanged). A weighted block between
the layers l-1 and l gets

    W^l <- W^l lambda_{l-1} / lambda_l,        b^l <- b^l / lambda_l,

so that a^l / lambda_l is at most 1 for all but (100 - P) % of the activations: the rate of an
integrate-and-fire neuron with threshold 1 (one spike per step at most). For a threshold theta
(a ``gain`` of the rate code) the blocks into hidden neurons are multiplied by theta as well,
so that the rates stay a^l / lambda_l. A block that is not followed by neurons before the next
weighted block keeps its input's scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

WEIGHTED_BLOCKS = ("linear", "conv2d")
"""The block types whose weights and biases are scaled."""


def percentile(values: torch.Tensor, p: float) -> float:
    """The ``p``-th percentile (0 .. 100) of ``values`` with linear interpolation between the
    closest ranks (numpy.percentile's default): for sorted x_0 <= .. <= x_{n-1} and
    h = (n - 1) p / 100, x_floor(h) + (h - floor(h)) (x_ceil(h) - x_floor(h))."""
    flat = values.detach().flatten().double()
    if flat.numel() == 0:
        raise ValueError("the percentile of no values")
    h = (flat.numel() - 1) * p / 100.0
    lo = int(h)
    hi = min(lo + 1, flat.numel() - 1)
    low = flat.kthvalue(lo + 1).values
    high = flat.kthvalue(hi + 1).values if hi != lo else low
    return float(low + (h - lo) * (high - low))


def activation_scale(activations: torch.Tensor, p: float) -> float:
    """lambda: the ``p``-th percentile of the positive activations (1 where none is positive:
    a silent layer is left as it is)."""
    positive = activations[activations > 0]
    return percentile(positive, p) if positive.numel() else 1.0


def weight_factors(
    order: Sequence[tuple[str, str]],
    scales: Mapping[str, float],
    label: str,
    gain: float = 1.0,
) -> dict[str, tuple[float, float]]:
    """(weight factor gain lambda_{l-1} / lambda_l, bias factor gain / lambda_l) of every
    weighted block of a chain ``order`` of (name, block type); ``scales`` holds lambda of each
    hidden neurons block, ``label`` names the label layer (lambda = 1, no gain)."""
    factors = {}
    scale_in = 1.0
    for k, (name, kind) in enumerate(order):
        if kind not in WEIGHTED_BLOCKS:
            continue
        scale_out, factor = scale_in, 1.0
        for later, later_kind in order[k + 1 :]:
            if later_kind in WEIGHTED_BLOCKS:
                break
            if later_kind == "neurons":
                hidden = later != label
                scale_out = scales[later] if hidden else 1.0
                factor = gain if hidden else 1.0
                break
        factors[name] = (factor * scale_in / scale_out, factor / scale_out)
        scale_in = scale_out
    return factors
