"""BPTT runs through the same life cycle as first-spike ones: config, train, continue,
inference, eval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from snnexp.cli import main
from snnexp.config import ConfigError, config_from_dict, load_config
from snnexp.data.encoding import SpikeEncoder
from snnexp.modules.time_stepped import TimeSteppedNetwork
from snnexp.run.build import build_network

CONFIGS = Path(__file__).resolve().parents[1] / "experiment_configs"

TINY_BPTT = {
    "name": "tiny_bptt",
    "dataset": {
        "name": "yin_yang",
        "train_size": 200,
        "val_size": 100,
        "test_size": 100,
        "encoding": {"type": "rate", "rate_gain": 0.5},
    },
    "model": {
        "neuron": {"type": "alif", "tau_mem": 1.0, "tau_adapt": 5.0, "adapt_strength": 0.5},
        "layer_sizes": [16, 3],
        "adaptive_neurons": [8, 0],
        "recurrent": [True, False],
        "bias_times": [],
        "weight_init": "uniform_fan_in",
        "weight_mean": [0.0, 0.0],
        "weight_std": [1.0, 1.0],
        "dtype": "float32",
        "dt": 0.1,
        "sim_time": 2.5,
        "output": "membrane",
        "readout": "max_membrane",
    },
    "learning": {
        "rule": "bptt",
        "loss": {"type": "cross_entropy", "rate_regularization": 0.1},
        "surrogate": {"type": "arctan", "slope": 2.0},
        "optimizer": {"lr": 0.01},
    },
    "training": {
        "epochs": 4,
        "batch_size": 50,
        "batch_size_eval": 100,
        "savepoints": [2],
        "max_dw_norm": None,
    },
}


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def train(
    tmp_path: Path,
    epochs: int = 4,
    savepoints: tuple[int, ...] = (2,),
    results: str = "results",
    options: tuple[str, ...] = (),
) -> Path:
    data = yaml.safe_load(yaml.safe_dump(TINY_BPTT))
    data["training"].update(epochs=epochs, savepoints=list(savepoints))
    config = tmp_path / f"{results}.yaml"
    config.write_text(yaml.safe_dump(data))
    result = invoke("train", config, "--results-dir", tmp_path / results, "--quiet", *options)
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / results).iterdir()
    return run_dir


@pytest.fixture(scope="module")
def bptt_run(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("bptt"))


def test_training_learns_and_saves_scores_counts_and_traces(bptt_run):
    checkpoint = torch.load(bptt_run / "epoch_4" / "checkpoint.pt", weights_only=True)
    assert checkpoint["history"]["train_accuracy"][-1] > 0.5
    assert "layers.0.recurrent_weight" in checkpoint["model"]
    with np.load(bptt_run / "epoch_4" / "outputs_test.npz") as npz:
        assert npz["output_scores"].shape == (100, 3)
        assert npz["hidden_counts_0"].shape == (100, 16)
        assert npz["trace_input"].shape == (25, 4, 4)
        assert npz["trace_membrane_0"].shape == (25, 4, 16)
        assert npz["trace_threshold_0"].shape == (25, 4, 16)
        assert npz["trace_output_1"].shape == (25, 4, 3)
        accuracy = float(npz["accuracy"])
    result = invoke("inference", bptt_run)
    assert result.exit_code == 0, result.output
    assert f"accuracy {100 * accuracy:.2f} %" in result.output
    assert "time-stepped, 25 steps" in result.output


def test_continue_is_bitwise_identical_with_random_input_spikes(tmp_path, bptt_run):
    stopped = train(tmp_path, epochs=2, savepoints=(), results="stopped")
    result = invoke("continue", stopped, "2", "4", "--quiet")
    assert result.exit_code == 0, result.output
    a = torch.load(bptt_run / "epoch_4" / "checkpoint.pt", weights_only=True)
    b = torch.load(stopped / "epoch_4" / "checkpoint.pt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    on_gpu = torch.cuda.is_available()  # device auto: a GPU draws them with its own generator
    assert (a["rng"]["input_generator"] is None) == (not on_gpu)


def own_input_generator(encoder, shared, device, seed):
    """What a GPU run's encoder gives (dataset.encoding.draw_on: device): a generator of the
    input spikes apart from the run's, here on the CPU."""
    return torch.Generator().manual_seed(seed + 1)


def test_an_own_input_generator_is_saved_and_a_run_resumes_bitwise(tmp_path, monkeypatch):
    monkeypatch.setattr(SpikeEncoder, "training_generator", own_input_generator)
    whole = train(tmp_path, epochs=4, savepoints=(), results="whole")
    stopped = train(tmp_path, epochs=2, savepoints=(), results="stopped")
    result = invoke("continue", stopped, "2", "4", "--quiet")
    assert result.exit_code == 0, result.output
    a = torch.load(whole / "epoch_4" / "checkpoint.pt", weights_only=True)
    b = torch.load(stopped / "epoch_4" / "checkpoint.pt", weights_only=True)
    assert torch.equal(a["rng"]["input_generator"], b["rng"]["input_generator"])
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["history"]["train_loss"] == b["history"]["train_loss"]


def test_a_savepoint_without_the_input_generator_resumes_with_a_warning(tmp_path, monkeypatch):
    run_dir = train(tmp_path, epochs=2, savepoints=(), options=("--device", "cpu"))
    monkeypatch.setattr(SpikeEncoder, "training_generator", own_input_generator)
    result = invoke("continue", run_dir, "2", "3", "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    log = (run_dir / "log.txt").read_text()
    assert "generator of the input spikes (it was written on the CPU" in log
    assert "so the run differs from one never stopped" in log


def test_eval_draws_the_time_stepped_figures(bptt_run, tmp_path):
    result = invoke("eval", bptt_run, "--out", tmp_path / "figures")
    assert result.exit_code == 0, result.output
    names = {path.stem for path in (tmp_path / "figures").iterdir()}
    expected = {
        "spike_raster",
        "membrane_traces",
        "firing_rates_test",
        "output_scores_test",
        "confusion_test",
        "yin_yang_map_test",
        "summary",
        "untrained_vs_trained",
        "output_scores_over_training",
        "weight_matrices",
    }
    assert expected <= names
    assert not any(name.startswith("spike_time_histograms") for name in names)
    for path in (tmp_path / "figures").iterdir():
        assert path.stat().st_size > 10_000, path


def test_stepped_simulator_option_is_refused_for_bptt_runs(bptt_run):
    result = invoke("inference", bptt_run, "--simulator", "stepped")
    assert result.exit_code != 0
    assert "time-stepped already" in result.output


@pytest.mark.parametrize("name", ["yin_yang_bptt", "mnist_bptt", "16x16_mnist_bptt"])
def test_shipped_bptt_configs_build(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    model = build_network(cfg, torch.Generator().manual_seed(0))
    assert isinstance(model, TimeSteppedNetwork)
    n_values = 784 if cfg.dataset.name == "sequential_mnist" else cfg.model.n_inputs
    scores, hidden = model(torch.full((2, n_values), 1.0))
    assert scores.shape == (2, cfg.model.layer_sizes[-1])
    assert len(hidden) == len(cfg.model.layer_sizes) - 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"learning": {"rule": "bptt"}}, "learning.loss.type: 'ttfs' is for first-spike rules"),
        ({"learning": {"loss": {"type": "cross_entropy"}}}, "is for time-stepped rules"),
        ({"model": {"neuron": {"type": "leaky"}}}, "model.neuron.type: 'leaky' is for"),
        (
            {
                "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
                "model": {"output": "membrane", "readout": "spike_count"},
            },
            "needs a spiking label layer",
        ),
        (
            {
                "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
                "model": {"readout_steps": 1000},
            },
            "the simulation has only 400 steps",
        ),
        (
            {
                "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
                "dataset": {"name": "sequential_mnist", "encoding": {"type": "rate"}},
                "model": {"n_inputs": 80, "layer_sizes": [20, 10], "bias_times": []},
            },
            "go together",
        ),
        (
            {
                "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
                "dataset": {"encoding": {"type": "rate", "interpolate": True}},
                "model": {"bias_times": []},
            },
            "dataset.encoding.interpolate: splits latency spikes between steps",
        ),
        ({"model": {"neuron": {"type": "lif"}}}, "did you mean 'alif'"),
        ({"learning": {"surrogate": {"type": "sigmoid"}}}, "did you mean 'fast_sigmoid'"),
    ],
)
def test_rule_specific_settings_are_checked(changes, message):
    data: dict = {}
    for section, values in changes.items():
        data[section] = values
    with pytest.raises(ConfigError) as error:
        config_from_dict(data)
    assert message in str(error.value)
