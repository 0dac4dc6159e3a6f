"""Data sets and spike encoders.

``load_split(config.dataset, "train")`` gives an :class:`EncodedSplit`: input spike times ready for
a network, the labels, and the raw samples for plots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from snnexp.data.encoding import latency_encode
from snnexp.data.yin_yang import YIN_YANG_SPLITS, yin_yang

if TYPE_CHECKING:
    from snnexp.config import DatasetConfig

__all__ = ["EncodedSplit", "YIN_YANG_SPLITS", "latency_encode", "load_split", "yin_yang"]

SPLITS = ("train", "val", "test")


@dataclass
class EncodedSplit:
    """One split of a data set, encoded as input spike times.

    ``input_times`` is ``(n, n_inputs)`` float64 (``+inf`` = no spike; bias spikes are added by the
    model, not here), ``labels`` is ``(n,)`` int64, ``samples`` holds the raw values ``(n, d)``
    for plots (Yin-Yang: ``(x, y, 1 - x, 1 - y)``) or ``None`` where they would be too large.
    """

    name: str
    input_times: torch.Tensor
    labels: torch.Tensor
    samples: np.ndarray | None


def load_split(dataset: DatasetConfig, split: str) -> EncodedSplit:
    """Build and encode the ``split`` ("train", "val" or "test") of the configured data set.

    Yin-Yang uses the config's ``<split>_size`` and ``<split>_seed`` and the latency code
    ``t = t_early + v (t_late - t_early)`` from ``dataset.encoding``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are {', '.join(SPLITS)}")
    if dataset.name != "yin_yang":
        raise NotImplementedError(
            f"dataset {dataset.name!r} is not available in this version of snnexp: only "
            "'yin_yang' is; the MNIST-family datasets come in a later version"
        )
    size = getattr(dataset, f"{split}_size")
    seed = getattr(dataset, f"{split}_seed")
    samples, labels = yin_yang(size, seed)
    times = latency_encode(samples, dataset.encoding.t_early, dataset.encoding.t_late)
    return EncodedSplit(split, times, torch.from_numpy(labels), samples)
