"""Data sets and spike encoders.

``load_split(config.dataset, "train")`` gives an :class:`EncodedSplit`: input spike times ready for
a network, the labels, and the raw samples for plots. Yin-Yang is generated
(:mod:`snnexp.data.yin_yang`); MNIST, 16x16 MNIST and their Fashion-MNIST twins are read from
the MNIST files (:mod:`snnexp.data.mnist`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from snnexp.choices import SPLITS
from snnexp.data.encoding import latency_encode
from snnexp.data.mnist import DATASETS as MNIST_DATASETS
from snnexp.data.mnist import data_root, load_mnist_split
from snnexp.data.yin_yang import YIN_YANG_SPLITS, yin_yang

if TYPE_CHECKING:
    from snnexp.config import DatasetConfig

__all__ = [
    "EncodedSplit",
    "MNIST_DATASETS",
    "YIN_YANG_SPLITS",
    "data_root",
    "latency_encode",
    "load_split",
    "yin_yang",
]


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


def load_split(
    dataset: DatasetConfig, split: str, data_dir: str | os.PathLike | None = None
) -> EncodedSplit:
    """Build and encode the ``split`` ("train", "val" or "test") of the configured data set.

    Yin-Yang uses the config's ``<split>_size`` and ``<split>_seed`` and the latency code
    ``t = t_early + v (t_late - t_early)`` from ``dataset.encoding``. The MNIST family reads the
    published splits from the data root (``data_dir``, i.e. ``--data-dir``, else
    ``dataset.root``, else ``$SNNEXP_DATA``, else ``./data``), downloading missing files only
    if ``dataset.download``; their ``samples`` are None. Missing or damaged files raise
    :class:`snnexp.errors.DataError`.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are {', '.join(SPLITS)}")
    if dataset.name in MNIST_DATASETS:
        times, labels = load_mnist_split(
            dataset.name,
            split,
            data_root(data_dir, dataset.root),
            download=dataset.download,
            t_early=dataset.encoding.t_early,
            t_late=dataset.encoding.t_late,
        )
        return EncodedSplit(split, times, labels, None)
    if dataset.name != "yin_yang":
        raise ValueError(
            f"unknown dataset {dataset.name!r}; available: yin_yang, {', '.join(MNIST_DATASETS)}"
        )
    size = getattr(dataset, f"{split}_size")
    seed = getattr(dataset, f"{split}_seed")
    samples, labels = yin_yang(size, seed)
    times = latency_encode(samples, dataset.encoding.t_early, dataset.encoding.t_late)
    return EncodedSplit(split, times, torch.from_numpy(labels), samples)
