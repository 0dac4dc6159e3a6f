"""TensorBoard statistics: what training (--tensorboard, training.tensorboard) and
`snnexp eval --tensorboard` write, read back with tensorboard's EventAccumulator, and the error
without tensorboard installed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from tests.cli_runs import invoke, train_run, write_config
from tests.test_bptt_life_cycle import TINY_BPTT
from tests.test_conversion import ONE_LAYER

NOT_INSTALLED = "the optional extra tensorboard is not installed: pip install 'snnexp[tensorboard]'"


def read_events(folder: Path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator", reason=NOT_INSTALLED
    )
    accumulator = event_accumulator.EventAccumulator(
        str(folder), size_guidance={"scalars": 0, "histograms": 0}
    )
    accumulator.Reload()
    return accumulator


def sections(config: dict) -> dict:
    return {key: value for key, value in config.items() if key != "name"}


def test_a_bptt_run_writes_losses_weights_and_spike_statistics_per_epoch(tmp_path):
    pytest.importorskip("tensorboard", reason=NOT_INSTALLED)
    run_dir = train_run(tmp_path, sections(TINY_BPTT), options=("--tensorboard",))
    events = read_events(run_dir / "tensorboard")
    scalars, histograms = events.Tags()["scalars"], events.Tags()["histograms"]
    for tag in ("loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr"):
        assert tag in scalars
        assert [event.step for event in events.Scalars(tag)] == [0, 1, 2, 3, 4]
    for tag in ("count_mean", "count_var", "first_time_mean", "first_time_var"):
        assert f"spikes/layer_1/{tag}" in scalars
    assert {"spikes/layer_1/counts", "spikes/layer_1/first_times"} <= set(histograms)
    assert "weights/layers.0.weight" in histograms
    # the logged accuracy is the history's
    history = (run_dir / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    last = dict(zip(header, history[-1].split(","), strict=True))
    logged = events.Scalars("accuracy/val")[-1].value
    assert logged == pytest.approx(float(last["val_accuracy"]), abs=1e-6)
    # first spike times lie in the simulated window
    times = events.Scalars("spikes/layer_1/first_time_mean")
    assert all(0.0 <= event.value <= TINY_BPTT["model"]["sim_time"] for event in times)
    # the statistics draw no random numbers of the training: the same weights without them
    plain = train_run(tmp_path, sections(TINY_BPTT), results="plain")
    logged_run = torch.load(run_dir / "epoch_4" / "checkpoint.pt", weights_only=True)
    plain_run = torch.load(plain / "epoch_4" / "checkpoint.pt", weights_only=True)
    for key, value in plain_run["model"].items():
        assert torch.equal(value, logged_run["model"][key]), key


def test_first_spike_runs_log_their_hidden_spike_times(tmp_path):
    pytest.importorskip("tensorboard", reason=NOT_INSTALLED)
    run_dir = train_run(
        tmp_path, {"training": {"epochs": 2, "savepoints": [], "tensorboard": True}}
    )
    events = read_events(run_dir / "tensorboard")
    assert "spikes/layer_1/first_time_mean" in events.Tags()["scalars"]
    counts = events.Scalars("spikes/layer_1/count_mean")
    assert [event.step for event in counts] == [0, 1, 2]
    assert all(0 <= event.value <= 20 for event in counts)  # 20 hidden neurons fire once at most


def test_eval_of_a_converted_run_writes_ann_and_snn_accuracy(tmp_path):
    pytest.importorskip("tensorboard", reason=NOT_INSTALLED)
    ann = train_run(tmp_path, sections(ONE_LAYER))
    result = invoke(
        "convert", ann, "--code", "rate", "--steps", "20", "--results-dir", tmp_path / "snn"
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "snn").iterdir()
    result = invoke("eval", run_dir, "--only", "confusion_test", "--tensorboard")
    assert result.exit_code == 0, result.output
    events = read_events(run_dir / "tensorboard")
    scalars = events.Tags()["scalars"]
    summary = json.loads((run_dir / "conversion.json").read_text())
    ann_accuracy = events.Scalars("conversion/ann_accuracy_test")[0].value
    snn_accuracy = events.Scalars("conversion/snn_accuracy_test")[0].value
    assert ann_accuracy == pytest.approx(summary["ann"]["accuracy"]["test"], abs=1e-6)
    assert snn_accuracy == pytest.approx(summary["snn"]["test"]["accuracy"], abs=1e-6)
    by_step = events.Scalars("conversion/snn_accuracy_by_step_test")
    assert [event.step for event in by_step] == list(range(1, 21))
    assert "spikes/relu1/count_mean" in scalars
    assert "weights/blocks.fc1.weight" in events.Tags()["histograms"]


def test_tensorboard_asked_for_but_not_installed_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    config = write_config(tmp_path)
    results = tmp_path / "results"
    result = invoke("train", config, "--results-dir", results, "--quiet", "--tensorboard")
    assert result.exit_code == 1
    assert "need the optional dependency tensorboard: pip install 'snnexp[tensorboard]'" in (
        result.output
    )
    assert "Traceback" not in result.output
    assert not results.exists() or not any(results.iterdir())
