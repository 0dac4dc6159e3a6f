"""Conformance with the published MNIST networks (../shared/reference) on the MNIST test files
(../shared/data/MNIST/raw): the data pipeline (files, split, 16x16 preprocessing, encoding) and
the exact ET forward pass together reproduce the published accuracies and output times.

The data root holds only the two test files, so these also show that the test split needs
nothing else. Skipped, with the reason, where ../shared is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnexp.config import DatasetConfig, load_config
from snnexp.data import load_split
from snnexp.functional.event.et import et_spike_times
from snnexp.functional.neuron import NeuronParams

MNIST_RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "MNIST" / "raw"
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CHUNK = 100  # samples per forward pass


@pytest.fixture
def test_files_only(tmp_path: Path) -> Path:
    """A data root with links to the MNIST test files and nothing else."""
    missing = [name for name in TEST_FILES if not (MNIST_RAW / name).is_file()]
    if missing:
        pytest.skip(f"MNIST test files not found in {MNIST_RAW}: {', '.join(missing)}")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in TEST_FILES:
        (raw / name).symlink_to(MNIST_RAW / name)
    return tmp_path


def label_times(folder: Path, input_times: torch.Tensor) -> torch.Tensor:
    """Exact ET label-layer times of a reference network (no bias rows), in chunks."""
    weights = [torch.from_numpy(np.load(folder / f"weights_layer{k}.npy")) for k in range(2)]
    outputs = []
    for start in range(0, len(input_times), CHUNK):
        times = input_times[start : start + CHUNK]
        for weight in weights:
            times = et_spike_times(times, weight, NeuronParams())
        outputs.append(times)
    return torch.cat(outputs)


def accuracy(output_times: torch.Tensor, labels: np.ndarray) -> float:
    """Percent of samples whose earliest label spike is the true class."""
    return 100.0 * float((output_times.argmin(dim=1).numpy() == labels).mean())


def test_16x16_mnist_reference(reference_dir, test_files_only: Path) -> None:
    folder = reference_dir("16x16_mnist_et_200epochs")
    data = load_split(DatasetConfig(name="16x16_mnist"), "test", data_dir=test_files_only)
    labels = np.load(folder / "test_labels.npy")
    np.testing.assert_array_equal(data.labels.numpy(), labels)
    outputs = label_times(folder, data.input_times).numpy()
    assert accuracy(torch.from_numpy(outputs), labels) == pytest.approx(96.81, abs=1e-9)
    stored = np.load(folder / "test_output_times.npy")
    with np.errstate(invalid="ignore"):  # inf - inf
        same = (np.isinf(stored) & np.isinf(outputs)) | (np.abs(outputs - stored) <= 1e-4)
    assert same.all(axis=1).mean() >= 0.995


def test_mnist_reference(reference_dir, test_files_only: Path) -> None:
    folder = reference_dir("mnist_et_150epochs")
    data = load_split(DatasetConfig(name="mnist"), "test", data_dir=test_files_only)
    labels = np.load(folder / "test_labels.npy")
    np.testing.assert_array_equal(data.labels.numpy(), labels)
    outputs = label_times(folder, data.input_times)
    # the stored times are time-stepped (97.01 %); exact ET times give 97.04 %
    assert accuracy(outputs, labels) == pytest.approx(97.04, abs=1e-9)


@pytest.mark.parametrize(
    ("config", "reference"),
    [("16x16_mnist.yaml", "16x16_mnist_et_200epochs"), ("mnist.yaml", "mnist_et_150epochs")],
)
def test_shipped_configs_follow_the_published_ones(reference_dir, config: str, reference: str):
    published = load_config(reference_dir(reference) / "original_config.yaml")
    shipped = load_config(Path(__file__).resolve().parents[1] / "experiment_configs" / config)
    assert shipped.dataset.name == published.dataset.name
    assert shipped.model.neuron == published.model.neuron
    for key in ("n_inputs", "layer_sizes", "bias_times", "weight_mean", "weight_std"):
        assert getattr(shipped.model, key) == getattr(published.model, key), key
    assert shipped.learning == published.learning
    for key in ("epochs", "batch_size", "max_dw_norm", "weight_bumping", "input_noise", "seeds"):
        assert getattr(shipped.training, key) == getattr(published.training, key), key
