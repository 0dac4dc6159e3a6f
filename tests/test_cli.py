"""The experiment life cycle through the `snnexp` command: train, inference, eval, continue."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from cli_runs import TINY, invoke, train_run, write_config


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("trained"))


def test_train_writes_the_result_folder(trained_run):
    assert trained_run.name.startswith("tiny_20")
    assert {p.name for p in trained_run.iterdir()} >= {
        "config.yaml",
        "history.csv",
        "log.txt",
        "epoch_0",
        "epoch_2",
        "epoch_4",
        "progress.png",
    }
    assert (trained_run / "progress.png").read_bytes().startswith(b"\x89PNG")
    resolved = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert resolved["snnexp_version"]
    assert resolved["training"]["max_dw_norm"] == 0.2  # a default, filled in
    with open(trained_run / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]
    assert all(0.0 <= float(r["val_accuracy"]) <= 1.0 for r in rows)
    checkpoint = torch.load(trained_run / "epoch_4" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 4
    assert checkpoint["model"]["layers.0.weight"].shape == (5, 20)
    outputs = np.load(trained_run / "epoch_4" / "outputs_test.npz")
    assert outputs["output_times"].shape == (100, 3)
    assert outputs["hidden_times_0"].shape == (100, 20)
    predictions = outputs["predictions"]
    assert float(outputs["accuracy"]) == pytest.approx(np.mean(predictions == outputs["labels"]))
    assert "saved savepoint" in (trained_run / "log.txt").read_text()


def test_inference_reproduces_the_saved_accuracy(trained_run):
    outputs = np.load(trained_run / "epoch_4" / "outputs_test.npz")
    result = invoke("inference", trained_run)
    assert result.exit_code == 0, result.output
    assert f"accuracy {100 * float(outputs['accuracy']):.2f} %" in result.output
    assert "epoch 4" in result.output
    by_folder = invoke("inference", trained_run / "epoch_2", "--split", "val")
    assert by_folder.exit_code == 0, by_folder.output
    val = np.load(trained_run / "epoch_2" / "outputs_val.npz")
    assert f"accuracy {100 * float(val['accuracy']):.2f} %" in by_folder.output


def test_threads_option_sets_torch_threads(trained_run):
    device = r"cpu \(\d+ threads?\)|cuda(:\d+)? \(.+\)"
    assert re.search(rf"on ({device}) ->", (trained_run / "log.txt").read_text())
    before = torch.get_num_threads()
    try:
        default = invoke("inference", trained_run)
        one = invoke("inference", trained_run, "--threads", 1)
        assert one.exit_code == 0, one.output
        assert torch.get_num_threads() == 1
        assert one.output.splitlines()[-1] == default.output.splitlines()[-1]
        zero = invoke("inference", trained_run, "--threads", 0)
        assert zero.exit_code != 0
        assert "--threads" in zero.output
    finally:
        torch.set_num_threads(before)


def test_eval_draws_figures_from_saved_data(trained_run, tmp_path):
    result = invoke("eval", trained_run, "--epoch", 2, "--out", tmp_path / "figs")
    assert result.exit_code == 0, result.output
    names = {p.name for p in (tmp_path / "figs").iterdir()}
    assert {"training_curves.png", "confusion_test.png", "yin_yang_map_test.png"} <= names
    assert {"confusion_train.png", "output_times_test.png"} <= names


def test_export_trims_a_run_to_one_savepoint(trained_run, tmp_path, monkeypatch):
    exported = tmp_path / "shipped" / "tiny"
    result = invoke("export", trained_run, exported, "--splits", "test", "--drop-optimizer")
    assert result.exit_code == 0, result.output
    assert {p.name for p in exported.iterdir()} >= {"config.yaml", "history.csv", "epoch_4"}
    assert not (exported / "epoch_0").exists()
    assert {p.name for p in (exported / "epoch_4").iterdir()} == {
        "checkpoint.pt",
        "outputs_test.npz",
    }
    checkpoint = torch.load(exported / "epoch_4" / "checkpoint.pt", weights_only=True)
    assert checkpoint["optimizer"] is None and checkpoint["epoch"] == 4
    saved = np.load(trained_run / "epoch_4" / "outputs_test.npz")
    inference = invoke("inference", exported)
    assert f"accuracy {100 * float(saved['accuracy']):.2f} %" in inference.output
    refused = invoke("continue", exported, 4, 6)
    assert refused.exit_code != 0 and "exported without its optimizer state" in refused.output
    earlier = invoke(
        "export", trained_run, tmp_path / "at_2", "--epoch", 2, "--splits", "val", "--drop-hidden"
    )
    assert earlier.exit_code == 0, earlier.output
    with open(tmp_path / "at_2" / "history.csv") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [0, 1, 2]
    light = np.load(tmp_path / "at_2" / "epoch_2" / "outputs_val.npz")
    assert "output_times" in light.files
    assert not [key for key in light.files if key.startswith("hidden_")]
    again = invoke("export", trained_run, exported)
    assert again.exit_code != 0 and "exists; export into a new folder" in again.output
    real_access = os.access
    monkeypatch.setattr(  # pretrained/ read-only (a chmod would not stop root)
        os,
        "access",
        lambda path, mode: (
            real_access(path, mode) and not (mode & os.W_OK and str(path).startswith(str(exported)))
        ),
    )
    monkeypatch.chdir(tmp_path)
    drawn = invoke("eval", exported, "--only", "confusion_test")
    assert drawn.exit_code == 0, drawn.output
    assert not (exported / "epoch_4" / "figures").exists() or not any(
        (exported / "epoch_4" / "figures").iterdir()
    )
    fallback = tmp_path / "experiment_results" / "figures" / "tiny" / "epoch_4"
    assert (fallback / "confusion_test.png").read_bytes().startswith(b"\x89PNG")


def test_log_every_writes_running_training_metrics(tmp_path):
    run_dir = train_run(tmp_path, {"training": {"epochs": 1, "savepoints": [], "log_every": 2}})
    lines = [
        line
        for line in (run_dir / "log.txt").read_text().splitlines()
        if "running train loss" in line
    ]
    assert len(lines) == 3  # 300 samples in batches of 50: after batches 2, 4 and 6
    assert "epoch 1, batch 6: running train loss" in lines[-1]
    assert lines[-1].endswith("(300 samples)")


def test_continue_is_bitwise_identical_to_not_stopping(tmp_path):
    straight = train_run(tmp_path, results="straight")
    stopped = train_run(tmp_path, {"training": {"epochs": 2, "savepoints": []}}, results="stopped")
    result = invoke("continue", stopped, "2", "3, 4", "--quiet")
    assert result.exit_code == 0, result.output
    a = torch.load(straight / "epoch_4" / "checkpoint.pt", weights_only=True)
    b = torch.load(stopped / "epoch_4" / "checkpoint.pt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["history"]["val_loss"] == b["history"]["val_loss"]
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    assert (stopped / "epoch_3").is_dir()
    with open(stopped / "history.csv") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1, 2, 3, 4]


def test_continue_keeps_a_savepoint_it_would_overwrite(tmp_path):
    run = train_run(tmp_path)
    result = invoke("continue", run, "2", "4", "--quiet")
    assert result.exit_code == 0, result.output
    replaced = [p.name for p in run.iterdir() if p.name.startswith("epoch_4.replaced-")]
    assert len(replaced) == 1
    assert [p.name for p in run.iterdir() if p.name.startswith("history.before-continue")]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"training": {"batch_szie": 10}}, "did you mean 'batch_size'"),
        ({"training": {"epochs": "many"}}, "training.epochs: expected an integer"),
        ({"model": {"neuron": {"tau_mem": 1.5}}}, "ratio 2 (first_spike_dt)"),
    ],
)
def test_bad_config_gives_a_clear_error(tmp_path, overrides, message):
    config = write_config(tmp_path, overrides)
    result = invoke("train", config, "--results-dir", tmp_path / "results")
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "results").exists()


def test_missing_config_file(tmp_path):
    result = invoke("train", tmp_path / "nope.yaml")
    assert result.exit_code != 0
    assert "config file not found" in result.output
    assert "Traceback" not in result.output


def test_results_folder_without_savepoints(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(TINY))
    for command in ("inference", "eval"):
        result = invoke(command, tmp_path / "run")
        assert result.exit_code != 0
        assert "has no savepoints" in result.output
        assert "Traceback" not in result.output
    result = invoke("inference", tmp_path)
    assert "is not a snnexp result folder" in result.output


def test_savepoint_epoch_that_does_not_exist(trained_run):
    for args in (("inference", trained_run, "--epoch", "7"), ("continue", trained_run, "7", "9")):
        result = invoke(*args)
        assert result.exit_code != 0
        assert "no savepoint for epoch 7; available: 0, 2, 4" in result.output
        assert "Traceback" not in result.output


def test_corrupted_savepoint_is_reported_and_left_alone(tmp_path):
    run = train_run(tmp_path)
    checkpoint = run / "epoch_4" / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    result = invoke("inference", run)
    assert result.exit_code != 0
    assert "is corrupted or incomplete" in result.output
    assert "Traceback" not in result.output
    assert checkpoint.stat().st_size == 100
    assert "weights_only=False will" not in result.output  # not torch's unsafe advice
    assert invoke("inference", run, "--epoch", "2").exit_code == 0


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_seed_out_of_range_is_refused(tmp_path, seed):
    config = write_config(tmp_path)
    results = tmp_path / "results"
    result = invoke("train", config, "--seed", seed, "--results-dir", results)
    assert result.exit_code == 2
    assert f"Invalid value for '--seed': {seed} is not in the range 0<=x<=4294967295" in (
        result.output
    )
    assert not results.exists()


def test_legacy_config_trains(tmp_path, reference_dir):
    legacy = yaml.safe_load(
        (reference_dir("yin_yang_et_300epochs") / "original_config.yaml").read_text()
    )
    legacy["training_params"].update(epoch_number=1, epoch_snapshots=[])
    legacy["network_layout"]["layer_sizes"] = [10, 3]
    path = tmp_path / "legacy.yaml"
    path.write_text(yaml.safe_dump(legacy))
    result = invoke("train", path, "--results-dir", tmp_path / "results", "--quiet")
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "results").iterdir()
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["learning"]["rule"] == "first_spike_et"
    assert resolved["model"]["bias_times"] == [[0.9], [0.9]]


def test_seed_option_changes_the_run(tmp_path):
    a = train_run(tmp_path, results="a")
    config = write_config(tmp_path)
    result = invoke("train", config, "--results-dir", tmp_path / "b", "--quiet", "--seed", "5")
    assert result.exit_code == 0, result.output
    (b,) = (tmp_path / "b").iterdir()
    wa = torch.load(a / "epoch_0" / "checkpoint.pt", weights_only=True)["model"]["layers.0.weight"]
    wb = torch.load(b / "epoch_0" / "checkpoint.pt", weights_only=True)["model"]["layers.0.weight"]
    assert not torch.equal(wa, wb)
    assert yaml.safe_load((b / "config.yaml").read_text())["training"]["seeds"]["torch"] == 5


def test_set_option_changes_the_run_and_is_recorded(tmp_path):
    config = write_config(tmp_path)
    settings = ("--set", "model.layer_sizes=[7, 3]", "--set", "training.savepoints=[]")
    result = invoke("train", config, "--results-dir", tmp_path / "r", "--quiet", *settings)
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "r").iterdir()
    weight = torch.load(run / "epoch_4" / "checkpoint.pt", weights_only=True)["model"]
    assert weight["layers.0.weight"].shape[1] == 7
    assert sorted(p.name for p in run.glob("epoch_*")) == ["epoch_0", "epoch_4"]
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["model"]["layer_sizes"] == [7, 3]
    assert "model.layer_sizes=[7, 3]; training.savepoints=[]" in (run / "log.txt").read_text()
    assert yaml.safe_load(config.read_text())["model"]["layer_sizes"] == [20, 3]


def test_help_shows_examples():
    for command in ("train", "inference", "eval", "continue"):
        result = invoke(command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output


def test_result_files_follow_the_umask(tmp_path):
    """A shared result folder is readable by collaborators: files and savepoint folders get
    the permissions the umask gives (0644 / 0755 under 022), not mkstemp's 0600 / 0700."""
    old = os.umask(0o022)
    try:
        run = train_run(tmp_path)
    finally:
        os.umask(old)
    epoch_dir = run / "epoch_4"
    assert epoch_dir.stat().st_mode & 0o777 == 0o755
    for path in (
        epoch_dir / "checkpoint.pt",
        epoch_dir / "outputs_test.npz",
        run / "history.csv",
        run / "config.yaml",
    ):
        assert path.stat().st_mode & 0o777 == 0o644, path
