"""An encoded split of a dataset, and loading one through the dataset's registered loader."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from snnexp.choices import SPLITS
from snnexp.data.registry import DATASETS

if TYPE_CHECKING:
    from snnexp.config import DatasetConfig


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
    spec = DATASETS.get(dataset.name)
    if spec is None:
        raise ValueError(f"unknown dataset {dataset.name!r}; available: {', '.join(DATASETS)}")
    return importlib.import_module(spec.loader).load(dataset, split, data_dir)
