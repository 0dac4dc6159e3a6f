"""Data-parallel training under torchrun (gloo on the CPU): two ranks give the weights of one
process with the same global batch, for BPTT (rate-coded input: the random spikes are the same
too; a firing-rate regulariser over the whole batch) and for exact first-spike learning with
weight bumping and DEEP R; continue under torchrun goes on from a savepoint."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snnexp.run.distributed import SINGLE, World, shard_bounds

CONFIGS = Path(__file__).resolve().parents[1] / "experiment_configs"
SMALL = (
    "dataset.train_size=300",
    "dataset.val_size=100",
    "dataset.test_size=100",
)
TOLERANCE = 1e-6


def settings(*items: str) -> list[str]:
    return [part for item in (*SMALL, *items) for part in ("--set", item)]


def snnexp(*args: object, ranks: int = 1) -> None:
    """`snnexp ARGS` in one process (one thread) or under torchrun with ``ranks`` processes."""
    if ranks == 1:
        command = [sys.executable, "-m", "snnexp", *map(str, args), "--threads", "1"]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(ranks),
            "--standalone",
            "-m",
            "snnexp",
            *map(str, args),
        ]
    done = subprocess.run([*command, "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def weights(run: Path, epoch: int) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run / f"epoch_{epoch}" / "checkpoint.pt", weights_only=True)
    return checkpoint["model"]


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        difference = (a[key].double() - b[key].double()).abs()
        assert difference.numel() == 0 or difference.max().item() <= TOLERANCE, key


def test_shards_cover_the_batch_in_rank_order() -> None:
    assert shard_bounds(7, SINGLE) == (0, 7)
    bounds = [shard_bounds(7, World(rank, 3, rank, "gloo")) for rank in range(3)]
    assert bounds == [(0, 3), (3, 5), (5, 7)]


def test_bptt_under_torchrun_equals_one_process_and_continues(tmp_path: Path) -> None:
    config = CONFIGS / "yin_yang_bptt.yaml"
    rate = (
        "dataset.encoding.type=rate",
        "dataset.encoding.interpolate=false",
        "model.bias_times=[]",
        "learning.loss.rate_regularization=0.5",
    )
    single, ranks = tmp_path / "single", tmp_path / "ranks"
    snnexp(
        "train",
        config,
        "--run-dir",
        single,
        *settings(*rate, "training.epochs=3", "training.savepoints=[2, 3]"),
    )
    snnexp(
        "train",
        config,
        "--run-dir",
        ranks,
        *settings(*rate, "training.epochs=2", "training.savepoints=[2]"),
        ranks=2,
    )
    assert_close(weights(single, 2), weights(ranks, 2))
    snnexp("continue", ranks, "2", "3", ranks=2)
    assert_close(weights(single, 3), weights(ranks, 3))
    log = (ranks / "log.txt").read_text()
    assert "data-parallel over 2 processes (gloo)" in log
    assert log.count("run ended: completed") == 2


@pytest.mark.parametrize(
    ("config", "extra"),
    [
        ("yin_yang_small.yaml", ("model.weight_mean=[0.2, 0.1]", "training.batch_size=75")),
        ("yin_yang_deep_r.yaml", ()),
    ],
    ids=["bumping", "deep_r"],
)
def test_first_spike_under_torchrun_equals_one_process(
    tmp_path: Path, config: str, extra: tuple[str, ...]
) -> None:
    single, ranks = tmp_path / "single", tmp_path / "ranks"
    options = settings(*extra, "training.epochs=2", "training.savepoints=[2]")
    snnexp("train", CONFIGS / config, "--run-dir", single, *options)
    snnexp("train", CONFIGS / config, "--run-dir", ranks, *options, ranks=2)
    assert_close(weights(single, 2), weights(ranks, 2))
    single_rows, rank_rows = (
        list(csv.DictReader((run / "history.csv").open())) for run in (single, ranks)
    )
    for one, two in zip(single_rows, rank_rows, strict=True):
        exact = set(one) - {"seconds", "train_loss"}
        assert {key: one[key] for key in exact} == {key: two[key] for key in exact}
        if one["train_loss"]:
            assert float(one["train_loss"]) == pytest.approx(
                float(two["train_loss"]), rel=1e-12, nan_ok=True
            )
    assert any(int(row["bumps"]) > 0 for row in single_rows)
