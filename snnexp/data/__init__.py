"""Data sets and spike encoders.

``load_split(config.dataset, "train")`` gives an :class:`~snnexp.data.splits.EncodedSplit`: input
spike times ready for a network, the labels, and the raw samples for plots. Every dataset is
registered in :mod:`snnexp.data.registry` with the module that loads it: Yin-Yang is generated
(:mod:`snnexp.data.yin_yang`); MNIST, 16x16 MNIST, their Fashion-MNIST twins and sequential
MNIST are read from the MNIST files (:mod:`snnexp.data.mnist`).

The generator of Yin-Yang needs only numpy; the other names are imported on first use, so that
the registry (and the config, which reads it) stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from snnexp.data.yin_yang import YIN_YANG_SPLITS, yin_yang

_API = {
    "EncodedSplit": "snnexp.data.splits",
    "load_split": "snnexp.data.splits",
    "latency_encode": "snnexp.data.encoding",
    "data_root": "snnexp.data.mnist",
}

__all__ = [
    "YIN_YANG_SPLITS",
    "EncodedSplit",
    "data_root",
    "latency_encode",
    "load_split",
    "yin_yang",
]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'snnexp.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)
