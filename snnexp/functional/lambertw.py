"""Principal branch of the Lambert W function, in torch (any device, any float dtype).

W0(z) is the solution w >= -1 of  w * exp(w) = z,  defined for z >= -1/e.

The exact first-spike time of a current-based LIF neuron with tau_mem = tau_syn is
t = tau (b/a - W0(z)) (see :mod:`snnexp.functional.event.et`), so this function sits in every
forward pass. It runs as a few vectorised Halley iterations from a start that is already close
everywhere, with no round trip to SciPy and no host synchronisation.
"""

from __future__ import annotations

import math

import torch

_INV_E = math.exp(-1.0)
_BRANCH_REGION = -0.32
_HALLEY_STEPS = {torch.float64: 3, torch.float32: 2}


def _initial_guess(z: torch.Tensor) -> torch.Tensor:
    """Start values within a few percent of W0(z).

    Near the branch point z = -1/e the series in p = sqrt(2 (e z + 1)) is used,
    W0 = -1 + p - p^2/3 + 11/72 p^3 + O(p^4); elsewhere Winitzki's approximation
    W0(z) ~ L (1 - log(1 + L) / (2 + L)) with L = log(1 + z).
    """
    p = torch.sqrt(torch.clamp(2.0 * (math.e * z + 1.0), min=0.0))
    near_branch = -1.0 + p - p * p / 3.0 + (11.0 / 72.0) * p * p * p
    log1p_z = torch.log1p(torch.clamp(z, min=_BRANCH_REGION))
    winitzki = log1p_z * (1.0 - torch.log1p(log1p_z) / (2.0 + log1p_z))
    return torch.where(z < _BRANCH_REGION, near_branch, winitzki)


def lambertw0(z: torch.Tensor) -> torch.Tensor:
    """Principal branch W0(z) for real z >= -1/e, elementwise.

    Halley's iteration for f(w) = w e^w - z,

        w <- w - f / (e^w (w + 1) - (w + 2) f / (2 w + 2)),

    converges cubically from :func:`_initial_guess` (start error < 0.08): three steps reach
    float64 round-off (two for float32), except within ~1e-15 of the branch point, where W0 itself
    is ill-conditioned (dW/dz -> inf) and the error is ~1e-9. Arguments below -1/e (no real
    solution) give NaN; +inf gives +inf.
    """
    if not torch.is_floating_point(z):
        z = z.to(torch.get_default_dtype())
    below_domain = z < -_INV_E
    zc = torch.clamp(z, min=-_INV_E)
    w = _initial_guess(zc)
    for _ in range(_HALLEY_STEPS.get(z.dtype, 5)):
        ew = torch.exp(w)
        f = w * ew - zc
        w_plus_1 = w + 1.0
        step = f / (ew * w_plus_1 - (w + 2.0) * f / (2.0 * w_plus_1))
        w = w - torch.nan_to_num(step, nan=0.0, posinf=0.0, neginf=0.0)
    w = torch.where(torch.isinf(z) & (z > 0), z, w)
    return torch.where(below_domain, torch.full_like(w, math.nan), w)
