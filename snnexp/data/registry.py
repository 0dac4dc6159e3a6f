"""The datasets snnexp knows, one :class:`DatasetSpec` each (torch-free: the config takes the
names and shapes from here).

A new dataset is one loader module with ``load(dataset, split, data_dir) -> EncodedSplit`` (see
:mod:`snnexp.data.splits`) plus one entry in :data:`DATASETS`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's shape and where it is loaded.

    ``n_inputs`` values per sample (before encoding: a sequential-MNIST step is one pixel, whose
    threshold-crossing code has its own width), ``n_classes`` labels, ``image_shape`` (channels,
    height, width) for conv blocks (None: not an image), ``loader`` the module that loads it.
    """

    name: str
    summary: str
    n_inputs: int
    n_classes: int
    loader: str
    image_shape: tuple[int, int, int] | None = None


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("yin_yang", "Yin-Yang, generated as published", 4, 3, "snnexp.data.yin_yang"),
        DatasetSpec("mnist", "MNIST 28x28", 784, 10, "snnexp.data.mnist", (1, 28, 28)),
        DatasetSpec(
            "16x16_mnist",
            "MNIST cropped and resized to 16x16",
            256,
            10,
            "snnexp.data.mnist",
            (1, 16, 16),
        ),
        DatasetSpec(
            "fashion_mnist", "Fashion-MNIST 28x28", 784, 10, "snnexp.data.mnist", (1, 28, 28)
        ),
        DatasetSpec(
            "16x16_fashion_mnist",
            "Fashion-MNIST cropped and resized to 16x16",
            256,
            10,
            "snnexp.data.mnist",
            (1, 16, 16),
        ),
        DatasetSpec(
            "sequential_mnist",
            "MNIST presented pixel by pixel (LSNN)",
            80,
            10,
            "snnexp.data.mnist",
        ),
    )
}
"""Every dataset, by ``dataset.name``."""
