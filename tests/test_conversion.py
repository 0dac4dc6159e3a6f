"""ANN -> SNN conversion: the normalisation, what each code computes against its closed form,
the spiking pooling and holds, accuracy by step, and `snnexp convert` through the life cycle of
a result folder (inference, eval, continue)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from snnexp.config import ConfigError, config_from_dict, config_to_dict
from snnexp.conversion.convert import (
    ConversionSettings,
    analog_view,
    code_gain,
    convert,
    spiking_config,
)
from snnexp.conversion.normalize import activation_scale, percentile, weight_factors
from snnexp.data.encoding import intensity
from snnexp.errors import SnnexpError
from snnexp.graph.blocks import GatedMaxPool2d, Hold
from snnexp.graph.network import GraphNetwork
from snnexp.run.build import build_network
from tests.cli_runs import invoke, train_run

ONE_LAYER = {
    "name": "one_layer",
    "dataset": {"name": "yin_yang", "train_size": 200, "val_size": 50, "test_size": 50},
    "model": {
        "dtype": "float64",
        "blocks": [
            {"name": "fc1", "type": "linear", "features": 12},
            {"name": "relu1", "type": "neurons"},
            {"name": "fc2", "type": "linear", "features": 3},
            {"name": "out", "type": "neurons"},
        ],
    },
    "learning": {
        "rule": "ann",
        "loss": {"type": "cross_entropy"},
        "optimizer": {"type": "adam", "lr": 0.01},
    },
    "training": {"epochs": 2, "batch_size": 50, "batch_size_eval": 50, "savepoints": [1]},
}


def converted(code: str, steps: int, ann: dict | None = None, **settings: object):
    """(converted network, the normalised ANN, test input times) of a random one-layer ANN."""
    cfg = config_from_dict(ann or ONE_LAYER)
    state = build_network(cfg, torch.Generator().manual_seed(3)).state_dict()
    chosen = ConversionSettings(code=code, steps=steps, **settings)
    conversion = convert(cfg, state, chosen)
    model = conversion.trainer.model
    assert isinstance(model, GraphNetwork)
    gain = code_gain(chosen.spike_code, chosen.theta)
    normalised = analog_view(config_to_dict(conversion.trainer.cfg), model.state_dict(), gain)
    return model, normalised, conversion.trainer.splits["test"].input_times


def test_the_percentile_is_numpys_with_linear_interpolation():
    values = torch.randn(1001, generator=torch.Generator().manual_seed(0)).double()
    for p in (0.0, 12.5, 50.0, 99.0, 99.9, 100.0):
        assert percentile(values, p) == pytest.approx(np.percentile(values.numpy(), p), abs=1e-12)
    # lambda counts the positive activations only: zeros and negatives are left out
    activations = torch.tensor([0.0, 0.0, -3.0, *range(1, 101)])
    assert activation_scale(activations, 50.0) == 50.5
    assert activation_scale(torch.zeros(5), 99.9) == 1.0


def test_weight_factors_scale_each_layer_by_its_neighbours_percentiles():
    order = [
        ("conv", "conv2d"),
        ("pool", "max_pool2d"),
        ("relu1", "neurons"),
        ("flat", "flatten"),
        ("fc1", "linear"),
        ("relu2", "neurons"),
        ("fc2", "linear"),
        ("out", "neurons"),
    ]
    factors = weight_factors(order, {"relu1": 2.0, "relu2": 5.0}, label="out")
    assert factors == {"conv": (0.5, 0.5), "fc1": (2.0 / 5.0, 0.2), "fc2": (5.0, 1.0)}


def test_the_normalised_ann_has_the_anns_scores_and_activations_at_most_one():
    model, normalised, times = converted("rate", steps=10, percentile=100.0)
    cfg = config_from_dict(ONE_LAYER)
    ann = build_network(cfg, torch.Generator().manual_seed(3))
    ann.eval()
    torch.testing.assert_close(normalised(times)[0], ann(times)[0])
    # the 100th percentile of the calibration samples: no activation of theirs above 1
    calibration_times = times  # the test samples are not the calibration samples ...
    assert normalised.activations(calibration_times)["relu1"].max() < 1.5  # ... but close


@pytest.mark.parametrize("theta", [1.0, 4.0])
def test_rate_spike_counts_approach_the_activations_times_the_steps(theta):
    """Integrate-and-fire with reset by subtraction and a constant current a fires
    floor(T a / theta) times in T steps (at most once per step); the threshold is folded into
    the normalisation, so that the rates are the normalised activations for any theta."""
    steps = 400
    model, normalised, times = converted("rate", steps=steps, threshold=theta)
    activation = normalised.activations(times)["relu1"]
    _, hidden = model(times)
    expected = torch.clamp(activation, max=1.0) * steps
    assert (hidden[0] - expected).abs().max() <= 1.0
    assert (hidden[0] > 0).sum() > 50  # the comparison is not vacuous
    ann = build_network(config_from_dict(ONE_LAYER), torch.Generator().manual_seed(3))
    ann.eval()
    torch.testing.assert_close(normalised(times)[0], ann(times)[0])


def test_ttfs_first_spike_times_follow_the_closed_form():
    """One spike per neuron, at the first step t with t a >= theta: t = ceil(theta / a)."""
    steps, theta = 200, 3.0
    model, normalised, times = converted("ttfs", steps=steps, threshold=theta)
    activation = normalised.activations(times)["relu1"]
    spikes = model.record(times)["spikes_0"]  # (steps, batch, neurons)
    assert spikes.sum(0).max() == 1.0
    fired = spikes.sum(0) > 0
    first = spikes.argmax(0) + 1
    expected = torch.ceil(theta / activation)
    in_time = (activation > 0) & (expected <= steps)
    assert torch.equal(fired, in_time)
    assert torch.equal(first[in_time].double(), expected[in_time])
    assert in_time.sum() > 50


def test_gated_max_pooling_passes_the_spikes_of_the_most_active_input():
    rates = torch.tensor([0.2, 0.5, 0.6, 0.3])
    steps = 200
    phases = torch.arange(1, steps + 1).unsqueeze(1) * rates
    spikes = (torch.floor(phases) - torch.floor(phases - rates)).reshape(steps, 1, 1, 2, 2)
    pooled, counts, _ = GatedMaxPool2d(2, None).run(spikes, None, 0)
    assert pooled.shape == (steps, 1, 1, 1, 1)
    assert counts.flatten().tolist() == spikes.sum(0).flatten().tolist()
    # after the first steps the most active input (rate 0.6) leads and only its spikes pass
    assert torch.equal(pooled[20:].flatten(), spikes[20:, 0, 0, 1, 0])
    assert abs(pooled.sum() - spikes[:, 0, 0, 1, 0].sum()) <= 2
    # plain max pooling of spikes would pass the union of all inputs' spikes
    union = spikes.amax(dim=(3, 4)).sum()
    assert union > pooled.sum() + 30


def test_hold_keeps_a_spike_on_across_chunks():
    spikes = torch.zeros(6, 1, 3)
    spikes[2, 0, 0] = 1.0
    spikes[4, 0, 2] = 1.0
    hold = Hold()
    first, state, _ = hold.run(spikes[:3], None, 0)
    second, _, _ = hold.run(spikes[3:], state, 3)
    held = torch.cat([first, second])[:, 0]
    assert held[:, 0].tolist() == [0, 0, 1, 1, 1, 1]
    assert held[:, 1].tolist() == [0] * 6
    assert held[:, 2].tolist() == [0, 0, 0, 0, 1, 1]


@pytest.mark.parametrize(
    "readout", ["final_membrane", "mean_membrane", "max_membrane", "spike_count"]
)
def test_scores_by_step_are_the_scores_of_shorter_runs(readout):
    model, _, times = converted("rate", steps=30)
    model.readout = readout
    model.chunk_steps = 7
    by_step, _ = model.scores_by_step(times[:8])
    assert by_step.shape == (30, 8, 3)
    for steps in (1, 7, 8, 30):
        model.steps = model.readout_steps = steps
        scores, _ = model(times[:8])
        torch.testing.assert_close(by_step[steps - 1], scores, rtol=1e-12, atol=1e-12)


def test_max_pooling_moves_behind_the_relu_and_becomes_gated_for_rates():
    ann = {
        **ONE_LAYER,
        "dataset": {"name": "16x16_mnist"},
        "model": {
            "dtype": "float32",
            "blocks": [
                {"name": "conv", "type": "conv2d", "channels": 4, "kernel": 5},
                {"name": "pool", "type": "max_pool2d", "kernel": 2},
                {"name": "relu", "type": "neurons"},
                {"name": "flat", "type": "flatten"},
                {"name": "fc", "type": "linear", "features": 10},
                {"name": "out", "type": "neurons"},
            ],
        },
    }
    cfg = config_from_dict(ann)
    for code, expected in (
        ("rate", ["conv", "relu", "pool", "flat", "fc", "out"]),
        ("ttfs", ["conv", "relu", "relu_hold", "pool", "flat", "fc", "out"]),
    ):
        spiking = spiking_config(cfg, ConversionSettings(code=code))
        blocks = spiking["model"]["blocks"]
        assert [block["name"] for block in blocks] == expected
        pool = next(block for block in blocks if block["name"] == "pool")
        assert pool["type"] == ("gated_max_pool2d" if code == "rate" else "max_pool2d")
        assert blocks[-1] == {"name": "out", "type": "neurons", "spiking": False}
        snn_cfg = config_from_dict(spiking)
        assert snn_cfg.learning.rule == "bptt" and snn_cfg.model.readout == "final_membrane"
        state = build_network(cfg, torch.Generator().manual_seed(0)).state_dict()
        twin = analog_view(spiking, state)
        twin.eval()
        ann_network = build_network(cfg)
        ann_network.load_state_dict(state)
        ann_network.eval()
        times = torch.rand(3, 256, generator=torch.Generator().manual_seed(1)) + 0.15
        torch.testing.assert_close(twin(times)[0], ann_network(times)[0])


def test_ttfs_clamped_needs_an_ann_with_clamped_relus_and_the_other_codes_refuse_one():
    with pytest.raises(SnnexpError, match="trained with clamped ReLUs"):
        spiking_config(config_from_dict(ONE_LAYER), ConversionSettings(code="ttfs_clamped"))
    blocks = [dict(block) for block in ONE_LAYER["model"]["blocks"]]
    blocks[1]["clamp"] = 0.1
    clamped = {**ONE_LAYER, "model": {**ONE_LAYER["model"], "blocks": blocks}}
    with pytest.raises(SnnexpError, match="use --code ttfs_clamped"):
        spiking_config(config_from_dict(clamped), ConversionSettings(code="rate"))
    spiking = spiking_config(config_from_dict(clamped), ConversionSettings(code="ttfs_clamped"))
    assert spiking["model"]["blocks"][1]["clamp"] == 0.1
    # the ANN twin of the converted run keeps the clamped ReLU: a = x if x > 0.1 else 0
    state = build_network(config_from_dict(clamped)).state_dict()
    twin = analog_view(spiking, state)
    times = torch.rand(50, 4, generator=torch.Generator().manual_seed(2)).double() + 0.15
    hidden = twin.activations(times)["relu1"]
    assert ((hidden == 0) | (hidden > 0.1)).all() and (hidden > 0).any()
    # ... and after normalisation in the units of lambda (beta / lambda): the same scores
    model, normalised, times = converted("ttfs_clamped", steps=20, ann=clamped)
    ann = build_network(config_from_dict(clamped), torch.Generator().manual_seed(3))
    ann.eval()
    torch.testing.assert_close(normalised(times)[0], ann(times)[0])
    clamp = next(b for b in model.spec.blocks.values() if b.name == "relu1").params["clamp"]
    assert clamp != 0.1  # beta / lambda


@pytest.fixture(scope="module")
def ann_run(tmp_path_factory) -> Path:
    sections = {key: value for key, value in ONE_LAYER.items() if key != "name"}
    return train_run(tmp_path_factory.mktemp("ann"), sections)


def test_convert_writes_a_run_that_infers_evaluates_and_fine_tunes(ann_run, tmp_path):
    results = tmp_path / "converted"
    result = invoke("convert", ann_run, "--code", "rate", "--steps", "40", "--results-dir", results)
    assert result.exit_code == 0, result.output
    (run_dir,) = results.iterdir()
    assert re.fullmatch(r"tiny_rate_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", run_dir.name)
    assert f"results: {run_dir}" in result.output
    checkpoint = torch.load(run_dir / "epoch_0" / "checkpoint.pt", weights_only=True)
    assert checkpoint["config"]["learning"]["rule"] == "bptt"
    summary = json.loads((run_dir / "conversion.json").read_text())
    assert summary["code"] == "rate" and summary["steps"] == 40
    assert len(summary["snn"]["test"]["accuracy_by_step"]) == 40
    assert summary["ann"]["macs_per_sample"] == 4 * 12 + 12 * 3
    snn_accuracy = summary["snn"]["test"]["accuracy"]
    ann_accuracy = summary["ann"]["accuracy"]["test"]
    with np.load(run_dir / "epoch_0" / "outputs_test.npz") as npz:
        assert float(npz["accuracy"]) == snn_accuracy

    result = invoke("inference", run_dir)
    assert result.exit_code == 0, result.output
    assert f"SNN (rate, 40 steps): accuracy {100 * snn_accuracy:.2f} %" in result.output
    assert f"ANN it was converted from: accuracy {100 * ann_accuracy:.2f} %" in result.output

    exported = tmp_path / "exported"
    result = invoke("export", run_dir, exported, "--drop-optimizer")
    assert result.exit_code == 0, result.output
    assert json.loads((exported / "conversion.json").read_text()) == summary
    result = invoke("inference", exported)
    assert f"ANN it was converted from: accuracy {100 * ann_accuracy:.2f} %" in result.output

    figures = tmp_path / "figures"
    result = invoke("eval", run_dir, "--only", "conversion_accuracy_test", "--out", figures)
    assert result.exit_code == 0, result.output
    assert (figures / "conversion_accuracy_test.png").stat().st_size > 10_000

    result = invoke("continue", run_dir, "0", "1", "--quiet")
    assert result.exit_code == 0, result.output
    tuned = torch.load(run_dir / "epoch_1" / "checkpoint.pt", weights_only=True)
    assert not torch.equal(
        tuned["model"]["blocks.fc1.weight"], checkpoint["model"]["blocks.fc1.weight"]
    )
    assert math.isfinite(tuned["history"]["train_loss"][-1])


def test_convert_refuses_a_spiking_run(tmp_path):
    run_dir = train_run(tmp_path, {"training": {"epochs": 1, "savepoints": []}})
    result = invoke("convert", run_dir, "--code", "rate", "--results-dir", tmp_path / "out")
    assert result.exit_code == 1
    assert "snnexp convert takes the run of an ANN (learning.rule: ann" in result.output
    assert "Traceback" not in result.output


def test_blocks_with_a_state_over_the_steps_cannot_be_part_of_a_cycle():
    blocks = [
        {"name": "a", "type": "linear", "features": 5},
        {"name": "n", "type": "neurons", "inputs": ["a", {"block": "h", "delay": 1}]},
        {"name": "h", "type": "hold"},
        {"name": "f", "type": "linear", "features": 3},
        {"name": "o", "type": "neurons"},
    ]
    data = {
        "dataset": {"name": "yin_yang"},
        "model": {"neuron": {"type": "iaf"}, "blocks": blocks},
        "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
    }
    with pytest.raises(ConfigError, match="'h'\\): a hold block keeps a state over the steps"):
        config_from_dict(data)


TWO_LAYERS = {
    **ONE_LAYER,
    "model": {
        "dtype": "float64",
        "blocks": [
            {"name": "fc1", "type": "linear", "features": 10},
            {"name": "relu1", "type": "neurons"},
            {"name": "fc2", "type": "linear", "features": 8},
            {"name": "relu2", "type": "neurons"},
            {"name": "fc3", "type": "linear", "features": 3},
            {"name": "out", "type": "neurons"},
        ],
    },
}


def test_dynamic_thresholds_follow_a_step_by_step_reference():
    """theta_i(t) = theta + sum_j |w_ij| p_j(t), p_j(t) = [j has not fired before t] [its
    input current at t > 0]; each neuron fires once, at the first t with V_i(t) >= theta_i(t)."""
    steps, theta = 40, 2.0
    model, _, times = converted("ttfs_dyn_thresh", steps=steps, ann=TWO_LAYERS, threshold=theta)
    times = times[:20]
    spikes = model.record(times)["spikes_1"]  # (steps, batch, 8) of relu2
    inputs = intensity(times, 0.15, 2.0)
    w1, b1 = model.blocks["fc1"].weight, model.blocks["fc1"].bias
    w2, b2 = model.blocks["fc2"].weight, model.blocks["fc2"].bias
    current1 = inputs @ w1 + b1
    v1 = torch.zeros_like(current1)
    fired1 = torch.zeros_like(current1)
    v2 = torch.zeros(len(times), 8, dtype=torch.float64)
    fired2 = torch.zeros_like(v2)
    expected = []
    for _ in range(steps):
        prospective = (fired1 == 0).double() * (current1 > 0).double()
        v1 = v1 + current1
        fired1 = torch.maximum(fired1, (v1 >= theta).double())
        v2 = v2 + fired1 @ w2 + b2
        raised = theta + prospective @ w2.abs()
        new = (fired2 == 0).double() * (v2 >= raised).double()
        fired2 = fired2 + new
        expected.append(new)
    torch.testing.assert_close(spikes, torch.stack(expected), rtol=0, atol=0)
    assert spikes.sum() > 10
    plain, _, _ = converted("ttfs", steps=steps, ann=TWO_LAYERS, threshold=theta)
    plain_spikes = plain.record(times)["spikes_1"]
    # a raised threshold never makes a neuron fire earlier
    first = torch.where(spikes.sum(0) > 0, spikes.argmax(0), steps)
    plain_first = torch.where(plain_spikes.sum(0) > 0, plain_spikes.argmax(0), steps)
    assert (first >= plain_first).all() and (first > plain_first).any()


def test_gated_max_pooling_carries_its_counts_across_chunks():
    spikes = (torch.rand(30, 2, 3, 4, 4, generator=torch.Generator().manual_seed(5)) < 0.4).float()
    pool = GatedMaxPool2d(2, None)
    whole, _, _ = pool.run(spikes, None, 0)
    first, counts, _ = pool.run(spikes[:13], None, 0)
    second, _, _ = pool.run(spikes[13:], counts, 13)
    assert torch.equal(torch.cat([first, second]), whole)


def test_synaptic_operations_count_spikes_times_fan_out():
    """Rate: every spike into a weighted block counts its fan-out; ttfs: a held input once."""
    model, normalised, times = converted("rate", steps=30)
    model.synaptic_events = {}
    _, hidden = model(times[:5])
    events = model.synaptic_events
    model.synaptic_events = None
    assert set(events) == {"fc2"}  # fc1 reads the constant image: not counted
    torch.testing.assert_close(events["fc2"].total, hidden[0].sum(1) * 3)
    model, _, times = converted("ttfs", steps=30, threshold=2.0)
    model.count_onsets = True
    model.synaptic_events = {}
    spikes = model.record(times[:5])["spikes_0"]
    model.synaptic_events = {}
    model.chunk_steps = 7
    model(times[:5])
    torch.testing.assert_close(model.synaptic_events["fc2"].total, spikes.sum((0, 2)) * 3)
    model.synaptic_events = None


def test_unnamed_blocks_and_inputs_written_out_convert_as_a_chain():
    blocks = [
        {"type": "linear", "features": 6},
        {"type": "neurons", "inputs": "linear_0"},
        {"type": "linear", "features": 3, "inputs": ["neurons_1"]},
        {"type": "neurons"},
    ]
    ann = {**ONE_LAYER, "model": {**ONE_LAYER["model"], "blocks": blocks}}
    spiking = spiking_config(config_from_dict(ann), ConversionSettings(code="rate"))
    names = [block["name"] for block in spiking["model"]["blocks"]]
    assert names == ["linear_0", "neurons_1", "linear_2", "neurons_3"]
    branching = [*blocks[:3], {"type": "neurons", "inputs": ["linear_2", "linear_0"]}]
    with pytest.raises((SnnexpError, ConfigError)):
        spiking_config(
            config_from_dict({**ann, "model": {**ann["model"], "blocks": branching}}),
            ConversionSettings(code="rate"),
        )
