"""The Yin-Yang data set and its latency encoding, checked against the published test split."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from snnexp.data import EncodedSplit, latency_encode, load_split, yin_yang
from snnexp.data.yin_yang import YIN_YANG_SPLITS, yin_yang_class

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "yin_yang_et_300epochs"


def _dataset_config(**overrides: object) -> SimpleNamespace:
    fields = dict(
        name="yin_yang",
        root="data",
        download=False,
        train_size=50,
        val_size=20,
        test_size=10,
        train_seed=42,
        val_seed=41,
        test_seed=40,
        encoding=SimpleNamespace(t_early=0.15, t_late=2.0),
    )
    fields.update(overrides)
    return SimpleNamespace(**fields)


def test_test_split_matches_published_reference() -> None:
    if not (REFERENCE / "test_input_times.npy").exists():
        pytest.skip(f"reference data not found at {REFERENCE} (the shared/ folder is absent)")
    size, seed = YIN_YANG_SPLITS["test"]
    samples, labels = yin_yang(size, seed)
    times = latency_encode(samples, t_early=0.15, t_late=2.0)
    np.testing.assert_allclose(
        times.numpy(), np.load(REFERENCE / "test_input_times.npy"), rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(labels, np.load(REFERENCE / "test_labels.npy"))


def test_standard_splits() -> None:
    assert YIN_YANG_SPLITS == {"train": (5000, 42), "val": (1000, 41), "test": (1000, 40)}


def test_dtypes_and_shapes() -> None:
    samples, labels = yin_yang(17, 3)
    assert samples.shape == (17, 4) and samples.dtype == np.float64
    assert labels.shape == (17,) and labels.dtype == np.int64
    np.testing.assert_array_equal(samples[:, 2:], 1.0 - samples[:, :2])


def test_classes_are_balanced() -> None:
    _, labels = yin_yang(5000, 42)
    fractions = np.bincount(labels, minlength=3) / labels.size
    np.testing.assert_allclose(fractions, 1 / 3, atol=0.03)


def test_points_lie_in_big_circle() -> None:
    samples, _ = yin_yang(2000, 7)
    radius = np.hypot(samples[:, 0] - 0.5, samples[:, 1] - 0.5)
    assert np.all(radius <= 0.5)


def test_labels_follow_the_class_rules() -> None:
    samples, labels = yin_yang(500, 1)
    recomputed = [yin_yang_class(x, y) for x, y in samples[:, :2]]
    np.testing.assert_array_equal(labels, recomputed)


def test_deterministic_per_seed_and_different_across_seeds() -> None:
    a_samples, a_labels = yin_yang(100, 5)
    b_samples, b_labels = yin_yang(100, 5)
    np.testing.assert_array_equal(a_samples, b_samples)
    np.testing.assert_array_equal(a_labels, b_labels)
    c_samples, _ = yin_yang(100, 6)
    assert not np.array_equal(a_samples, c_samples)


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (0.75, 0.5, 2),  # centre of the right dot
        (0.25, 0.5, 2),  # centre of the left dot
        (0.25, 0.65, 1),  # just outside the left dot, in the left half-circle around it: yin
        (0.5, 0.9, 1),  # top of the big circle, far from the right dot: yin
        (0.75, 0.65, 0),  # just outside the right dot: yang
        (0.5, 0.1, 0),  # bottom of the big circle, far from the left dot: yang
    ],
)
def test_hand_checked_points(x: float, y: float, expected: int) -> None:
    assert yin_yang_class(x, y) == expected


def test_latency_encode() -> None:
    times = latency_encode(np.array([0.0, 0.5, 1.0]), t_early=0.15, t_late=2.0)
    assert times.dtype == torch.float64
    torch.testing.assert_close(
        times, torch.tensor([0.15, 1.075, 2.0], dtype=torch.float64), rtol=0, atol=1e-15
    )
    from_tensor = latency_encode(torch.tensor([[0.25]], dtype=torch.float32), 1.0, 3.0)
    assert from_tensor.dtype == torch.float64 and from_tensor.shape == (1, 1)
    assert from_tensor.item() == 1.5


def test_load_split_uses_config_sizes_and_seeds() -> None:
    config = _dataset_config(encoding=SimpleNamespace(t_early=0.1, t_late=1.1))
    for name, size, seed in [("train", 50, 42), ("val", 20, 41), ("test", 10, 40)]:
        split = load_split(config, name)
        assert isinstance(split, EncodedSplit) and split.name == name
        samples, labels = yin_yang(size, seed)
        np.testing.assert_array_equal(split.samples, samples)
        assert split.input_times.shape == (size, 4) and split.input_times.dtype == torch.float64
        torch.testing.assert_close(split.input_times, 0.1 + torch.from_numpy(samples))
        assert split.labels.dtype == torch.int64
        np.testing.assert_array_equal(split.labels.numpy(), labels)


def test_load_split_rejects_unknown_split() -> None:
    with pytest.raises(ValueError, match="train, val, test"):
        load_split(_dataset_config(), "validation")


def test_load_split_rejects_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'"):
        load_split(_dataset_config(name="cifar10"), "train")
