"""ANN training (learning.rule: ann): the ReLU network of a graph of blocks through the same life
cycle as the spiking rules, its forward pass, and the config checks of the rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnexp.config import ConfigError, config_from_dict, load_config
from snnexp.data.encoding import intensity
from snnexp.graph.analog import AnalogNetwork
from snnexp.run.build import build_network
from snnexp.run.evaluate import evaluate
from snnexp.run.inference import load_saved_network
from tests.cli_runs import invoke, train_run

BLOCKS = [
    {"name": "hidden", "type": "linear", "features": 16},
    {"name": "relu", "type": "neurons"},
    {"name": "drop", "type": "dropout", "p": 0.3},
    {"name": "fc", "type": "linear", "features": 3},
    {"name": "out", "type": "neurons"},
]
ANN = {
    "model": {"dtype": "float32", "blocks": BLOCKS},
    "learning": {
        "rule": "ann",
        "loss": {"type": "cross_entropy"},
        "optimizer": {"type": "adam", "lr": 0.01},
    },
    "training": {"epochs": 4, "batch_size": 50, "savepoints": [2]},
}


@pytest.fixture(scope="module")
def ann_run(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("ann"), ANN)


def test_the_ann_is_relu_layers_on_the_intensities_of_the_latency_code():
    cfg = config_from_dict({"dataset": {"name": "yin_yang"}, **ANN})
    network = build_network(cfg, torch.Generator().manual_seed(0))
    assert isinstance(network, AnalogNetwork)
    network.eval()
    times = 0.15 + torch.rand(8, 4, generator=torch.Generator().manual_seed(1)) * 1.85
    scores, hidden = network(times)
    x = intensity(times, 0.15, 2.0)
    blocks = network.blocks
    expected = torch.relu(x @ blocks["hidden"].weight + blocks["hidden"].bias)
    expected = expected @ blocks["fc"].weight + blocks["fc"].bias
    torch.testing.assert_close(scores, expected)
    assert hidden == []


def test_an_ann_trains_continues_bitwise_and_infers_through_the_command_line(ann_run, tmp_path):
    """With dropout: the evaluation runs without it (the saved accuracy is what inference
    prints), and a run continued from its savepoint ends bitwise like the uninterrupted one."""
    checkpoint = torch.load(ann_run / "epoch_4" / "checkpoint.pt", weights_only=True)
    assert checkpoint["history"]["train_accuracy"][-1] > 0.5
    with np.load(ann_run / "epoch_4" / "outputs_test.npz") as npz:
        assert npz["output_scores"].shape == (100, 3)
        accuracy = float(npz["accuracy"])
    result = invoke("inference", ann_run)
    assert result.exit_code == 0, result.output
    assert f"ANN: accuracy {100 * accuracy:.2f} %" in result.output
    stopped = train_run(tmp_path, {**ANN, "training": {**ANN["training"], "epochs": 2}})
    result = invoke("continue", stopped, "2", "4", "--quiet")
    assert result.exit_code == 0, result.output
    continued = torch.load(stopped / "epoch_4" / "checkpoint.pt", weights_only=True)
    for key, value in checkpoint["model"].items():
        assert torch.equal(value, continued["model"][key]), key
    assert checkpoint["history"]["val_loss"] == continued["history"]["val_loss"]


def test_evaluation_is_without_dropout_and_keeps_the_training_mode(ann_run):
    saved = load_saved_network(ann_run, device="cpu")
    from snnexp.data.splits import load_split

    split = load_split(saved.cfg.dataset, "val")
    split.input_times = split.input_times.float()
    saved.model.train()
    first = evaluate(saved.model, saved.loss_fn, split, 50)
    second = evaluate(saved.model, saved.loss_fn, split, 50)
    assert saved.model.training
    assert torch.equal(first.outputs, second.outputs)
    saved.model.eval()
    assert torch.equal(saved.model(split.input_times)[0], first.outputs)


def test_eval_draws_the_curves_and_confusion_matrices_but_no_spike_figures(ann_run, tmp_path):
    result = invoke("eval", ann_run, "--out", tmp_path / "figures")
    assert result.exit_code == 0, result.output
    names = {path.stem for path in (tmp_path / "figures").iterdir()}
    assert {"training_curves", "confusion_test", "output_scores_test", "graph"} <= names
    assert not {"spike_raster", "membrane_traces", "spike_time_histograms_test"} & names


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model": {"blocks": []}}, "model.blocks: learning.rule 'ann' trains the ReLU network"),
        (
            {"dataset": {"name": "yin_yang", "encoding": {"type": "rate"}}},
            "dataset.encoding.type: an ANN reads the intensities a latency code stands for",
        ),
        ({"learning": {"loss": {"type": "mse_count"}}}, "trains with cross_entropy"),
        (
            {"learning": {"loss": {"type": "cross_entropy", "rate_regularization": 0.1}}},
            "an ANN (learning.rule 'ann') has none: set it to 0",
        ),
        (
            {"blocks": [*BLOCKS[:1], {"type": "neurons", "recurrent": True}, *BLOCKS[3:]]},
            "block 'neurons_1' has recurrent: true; learning.rule 'ann' trains a feed-forward",
        ),
        (
            {"blocks": [*BLOCKS[:2], {"type": "delay", "steps": 1}, *BLOCKS[3:]]},
            "block 'delay_2' has a delay; learning.rule 'ann' trains a feed-forward",
        ),
    ],
)
def test_the_ann_rule_refuses_what_it_cannot_train(changes, message):
    data = {"dataset": {"name": "yin_yang"}, **ANN}
    data = {**data, "model": {**ANN["model"]}, "learning": {**ANN["learning"]}}
    if "blocks" in changes:
        data["model"]["blocks"] = changes["blocks"]
    for section in ("model", "dataset", "learning"):
        data[section] = {**data[section], **changes.get(section, {})}
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert message in str(err.value)


def test_a_conv_ann_keeps_the_image_shape():
    cfg = config_from_dict(
        {
            "dataset": {"name": "16x16_mnist"},
            "model": {
                "dtype": "float32",
                "blocks": [
                    {"type": "conv2d", "channels": 4, "kernel": 5},
                    {"type": "max_pool2d", "kernel": 2},
                    {"type": "neurons"},
                    {"type": "flatten"},
                    {"type": "linear", "features": 10},
                    {"type": "neurons"},
                ],
            },
            "learning": {"rule": "ann", "loss": {"type": "cross_entropy"}},
        }
    )
    network = build_network(cfg, torch.Generator().manual_seed(0))
    assert network.spec.blocks["conv2d_0"].out_shape == (4, 12, 12)
    scores, _ = network(torch.full((2, 256), 1.0))
    assert scores.shape == (2, 10)


@pytest.mark.parametrize("name", ["mnist_lenet5_ann", "mnist_mlp_ann"])
def test_shipped_ann_configs_build(name):
    cfg = load_config(Path(__file__).resolve().parents[1] / "experiment_configs" / f"{name}.yaml")
    network = build_network(cfg, torch.Generator().manual_seed(0))
    assert isinstance(network, AnalogNetwork)
    scores, _ = network(torch.full((2, 784), 1.0))
    assert scores.shape == (2, 10)


def test_the_summary_caption_names_the_blocks_of_a_graph(ann_run):
    import yaml

    from snnexp.plots.summary import config_caption

    config = yaml.safe_load((ann_run / "config.yaml").read_text())
    caption = config_caption(config, {})
    assert "network hidden > relu > drop > fc > out; rule ann; ReLU units" in caption
