"""The Yin-Yang data set (Kriener, Goeltz, Petrovici 2021), generated exactly as published.

Points ``(x, y)`` are drawn uniformly from the square ``[0, 2 r_big]^2`` with a numpy
``RandomState(seed)``, kept only inside the big circle of radius ``r_big`` around
``(r_big, r_big)``. For each sample the goal class is drawn first (``randint(3)``) and points are
drawn (``rand(2) * 2 r_big``) until one of that class turns up, so the classes stay balanced.

With ``d_right`` and ``d_left`` the distances to the dots at ``(1.5 r_big, r_big)`` and
``(0.5 r_big, r_big)``, the class of a point is

* dot (2) if ``d_right < r_small`` or ``d_left < r_small``,
* yin (1) if ``d_right <= r_small``, or ``r_small < d_left <= r_big / 2``,
  or (``y > r_big`` and ``d_right > r_big / 2``),
* yang (0) otherwise.

A sample is ``(x, y, 1 - x, 1 - y)``. Any deviation from this order of random draws changes every
published number, so keep it bit for bit.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from snnexp.config import DatasetConfig
    from snnexp.data.splits import EncodedSplit

#: The standard splits as ``split: (size, seed)``.
YIN_YANG_SPLITS: dict[str, tuple[int, int]] = {
    "train": (5000, 42),
    "val": (1000, 41),
    "test": (1000, 40),
}

DOT, YIN, YANG = 2, 1, 0


def yin_yang_class(x: float, y: float, r_small: float = 0.1, r_big: float = 0.5) -> int:
    """Class of ``(x, y)``: yang (0), yin (1) or dot (2), by the rules in the module doc."""
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    if d_right < r_small or d_left < r_small:
        return DOT
    is_yin = (
        d_right <= r_small
        or r_small < d_left <= 0.5 * r_big
        or (y > r_big and d_right > 0.5 * r_big)
    )
    return YIN if is_yin else YANG


def _draw_point(
    rng: np.random.RandomState, goal: int, r_small: float, r_big: float
) -> tuple[float, float]:
    """Rejection-sample a point in the big circle whose class is ``goal``."""
    while True:
        x, y = rng.rand(2) * 2.0 * r_big
        if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
            continue
        if yin_yang_class(x, y, r_small, r_big) == goal:
            return x, y


def yin_yang(
    size: int, seed: int, r_small: float = 0.1, r_big: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``size`` Yin-Yang samples with ``numpy.random.RandomState(seed)``.

    Returns the samples, float64 of shape ``(size, 4)`` holding ``(x, y, 1 - x, 1 - y)``, and the
    labels, int64 of shape ``(size,)`` (0 yang, 1 yin, 2 dot).
    """
    rng = np.random.RandomState(seed)
    samples = np.empty((size, 4), dtype=np.float64)
    labels = np.empty(size, dtype=np.int64)
    for i in range(size):
        goal = rng.randint(3)
        x, y = _draw_point(rng, goal, r_small, r_big)
        samples[i] = (x, y, 1.0 - x, 1.0 - y)
        labels[i] = goal
    return samples, labels


def load(
    dataset: DatasetConfig, split: str, data_dir: str | os.PathLike | None = None
) -> EncodedSplit:
    """The config's ``<split>_size`` samples drawn with ``<split>_seed``, latency coded as
    ``t = t_early + v (t_late - t_early)`` (``data_dir`` is not used: nothing is read). The
    generator above needs only numpy; torch is imported here, when a split is loaded."""
    import torch

    from snnexp.data.encoding import latency_encode
    from snnexp.data.splits import EncodedSplit

    size = getattr(dataset, f"{split}_size")
    seed = getattr(dataset, f"{split}_seed")
    samples, labels = yin_yang(size, seed)
    times = latency_encode(samples, dataset.encoding.t_early, dataset.encoding.t_late)
    return EncodedSplit(split, times, torch.from_numpy(labels), samples)
