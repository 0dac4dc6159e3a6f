"""Every network shipped in pretrained/ loads and reproduces the accuracies stored with it: the
last validation accuracy of its history.csv and the test accuracy of its saved outputs, each to
within 0.1 percentage point. MNIST-family networks need the data files (../shared/data or
$SNNEXP_DATA) and are skipped, with the reason, where they are absent."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from snnexp.errors import DataError
from snnexp.run.inference import evaluate_saved, load_saved_network
from snnexp.run.results import load_outputs

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NETWORKS = sorted(folder for folder in PRETRAINED.iterdir() if (folder / "config.yaml").is_file())
TOLERANCE = 0.001  # 0.1 percentage point


def data_root() -> Path:
    return Path(os.environ.get("SNNEXP_DATA", SHARED_DATA))


def last_val_accuracy(folder: Path) -> float:
    with open(folder / "history.csv", encoding="utf-8") as handle:
        return float(list(csv.DictReader(handle))[-1]["val_accuracy"])


def test_the_shipped_networks_are_there():
    names = {folder.name for folder in NETWORKS}
    assert {"yin_yang_et", "yin_yang_dt", "yin_yang_bptt", "yin_yang_deep_r"} <= names


@pytest.mark.parametrize("folder", NETWORKS, ids=lambda folder: folder.name)
def test_pretrained_network_reproduces_its_accuracy(folder: Path):
    saved = load_saved_network(folder, device="cpu")
    try:
        val = evaluate_saved(saved, "val", data_dir=data_root())
        test = evaluate_saved(saved, "test", data_dir=data_root())
    except DataError as error:
        pytest.skip(f"{folder.name}: data not available here ({error})")
    assert val.accuracy == pytest.approx(last_val_accuracy(folder), abs=TOLERANCE)
    stored = load_outputs(saved.epoch_dir, "test")
    assert stored is not None, f"{folder.name} ships no test outputs"
    assert test.accuracy == pytest.approx(float(stored["accuracy"]), abs=TOLERANCE)
