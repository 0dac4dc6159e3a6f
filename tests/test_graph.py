"""Graphs of blocks: the schedule, delays and cycles, equivalence with the layer stack, conv
shapes, direct input, chunked simulation, memory, and every message of the graph check."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from snnexp.config import ConfigError, config_from_dict
from snnexp.graph import GraphNetwork, parse_blocks
from snnexp.graph.spec import GraphError
from snnexp.run.build import build_network

LEAKY = {"type": "leaky", "tau_mem": 1.0, "threshold": 0.5}
LIN = {"type": "linear", "features": 3}
OUT = {"name": "out", "type": "neurons"}


def config(blocks: list, dataset: str = "yin_yang", **model: object) -> dict:
    """A BPTT config of ``blocks`` on ``dataset`` (float64, dt 0.1, 30 steps)."""
    encoding = {"type": "latency"} if dataset == "yin_yang" else {"type": "rate"}
    return {
        "dataset": {"name": dataset, "encoding": encoding},
        "model": {
            "neuron": LEAKY,
            "dtype": "float64",
            "dt": 0.1,
            "sim_time": 3.0,
            "readout": "spike_count",
            "blocks": blocks,
            **model,
        },
        "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
    }


def build(blocks: list, seed: int = 0, **kwargs: object) -> GraphNetwork:
    network = build_network(
        config_from_dict(config(blocks, **kwargs)), torch.Generator().manual_seed(seed)
    )
    assert isinstance(network, GraphNetwork)
    return network


CYCLE = [
    {"name": "a_in", "type": "linear", "features": 12, "bias": False, "inputs": ["input"]},
    {"name": "a", "type": "neurons", "inputs": ["a_in", "c_to_a"]},
    {"name": "a_to_b", "type": "linear", "features": 12, "inputs": [{"block": "a", "delay": 1}]},
    {"name": "b", "type": "neurons"},
    {"name": "b_to_c", "type": "linear", "features": 12, "inputs": [{"block": "b", "delay": 2}]},
    {"name": "c", "type": "neurons", "model": "synaptic", "tau_syn": 0.5},
    {"name": "c_to_a", "type": "linear", "features": 12, "inputs": [{"block": "c", "delay": 1}]},
    {"name": "out_fc", "type": "linear", "features": 3, "inputs": ["a", "c"]},
    {"name": "out", "type": "neurons"},
]


def input_times(batch: int = 16, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 0.15 + torch.rand(batch, 4, generator=gen, dtype=torch.float64) * 1.85


def test_schedule_runs_a_cycle_together_and_the_rest_in_dependency_order():
    spec = build(CYCLE).spec
    assert spec.schedule == [
        ["a_in"],
        ["a_to_b", "b", "b_to_c", "c", "c_to_a", "a"],
        ["out_fc"],
        ["out"],
    ]
    assert [spec.cyclic(c) for c in spec.schedule] == [False, True, False, False]
    assert spec.max_delays() == {"a": 1, "b": 2, "c": 1}
    assert spec.blocks["out_fc"].in_shape == (12,)


def test_one_step_delays_give_the_spikes_of_the_stack_with_delays_1():
    """A feed-forward stack 4-20-3 with delays [1, 1] as a graph: the same weights give the
    same spikes in every step, bitwise."""
    stack_cfg = config([])
    stack_cfg["model"] |= {
        "n_inputs": 4,
        "layer_sizes": [20, 3],
        "delays": [1, 1],
        "bias_times": [],
        "weight_mean": [0.6, 0.4],
        "weight_std": [0.5, 0.5],
    }
    del stack_cfg["model"]["blocks"]
    stack = build_network(config_from_dict(stack_cfg), torch.Generator().manual_seed(3))
    graph = build(
        [
            {
                "name": "fc1",
                "type": "linear",
                "features": 20,
                "bias": False,
                "inputs": [{"block": "input", "delay": 1}],
            },
            {"name": "lif1", "type": "neurons"},
            {
                "name": "fc2",
                "type": "linear",
                "features": 3,
                "bias": False,
                "inputs": [{"block": "lif1", "delay": 1}],
            },
            {"name": "lif2", "type": "neurons"},
        ]
    )
    with torch.no_grad():
        for layer, fc in zip(stack.layers, ("fc1", "fc2"), strict=True):
            graph.blocks[fc].weight.copy_(layer.weight)
    times = input_times(64)
    ours, theirs = graph.record(times), stack.record(times)
    assert theirs["spikes_0"].sum() > 0 and theirs["spikes_1"].sum() > 0
    for key in ("spikes_0", "spikes_1", "membrane_0", "membrane_1", "scores"):
        assert torch.equal(ours[key], theirs[key]), key
    assert torch.equal(graph(times)[1][0], stack(times)[1][0])


def test_chunks_of_any_length_give_the_same_run():
    """Delays longer than a chunk are carried over chunk boundaries."""
    network = build(CYCLE, seed=4)
    times = input_times()
    whole = network.record(times)
    for chunk in (1, 7):
        network.chunk_steps = chunk
        parts = network.record(times)
        for key, value in whole.items():
            torch.testing.assert_close(parts[key], value, rtol=0, atol=1e-12, msg=key)


def test_gradients_flow_through_the_cycle():
    network = build(CYCLE, seed=4)
    scores, hidden = network(input_times())
    assert [h.shape for h in hidden] == [(16, 12), (16, 12), (16, 12)]
    (scores.sum() + sum(h.sum() for h in hidden)).backward()
    for name in ("a_in", "a_to_b", "b_to_c", "c_to_a", "out_fc"):
        assert network.blocks[name].weight.grad.abs().sum() > 0, name


def test_delay_block_equals_a_delayed_edge():
    fc = {"name": "fc", "type": "linear", "features": 3, "bias": False}
    delayed_edge = build([{**fc, "inputs": [{"block": "input", "delay": 3}]}, OUT])
    delay_block = build([{"type": "delay", "steps": 3}, fc, OUT])
    delay_block.load_state_dict(delayed_edge.state_dict())
    times = input_times()
    expected = delayed_edge.record(times)["membrane_0"]
    assert expected[:3].abs().sum() == 0 and expected[3:].abs().sum() > 0
    assert torch.equal(expected, delay_block.record(times)["membrane_0"])


CONV = [
    {"name": "conv", "type": "conv2d", "channels": 4, "kernel": 3, "padding": 1},
    {"name": "pool", "type": "max_pool2d", "kernel": 2},
    {"name": "lif", "type": "neurons"},
    {"name": "conv2", "type": "conv2d", "channels": 4, "kernel": 3, "groups": 2},
    {"name": "sum_pool", "type": "sum_pool2d", "kernel": 2, "stride": 1},
    {"name": "avg", "type": "avg_pool2d", "kernel": 2},
    {"name": "drop", "type": "dropout", "p": 0.1},
    {"name": "flat", "type": "flatten"},
    {"name": "fc", "type": "linear", "features": 10},
    {"name": "out", "type": "neurons", "spiking": False},
]


def image_times(batch: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 0.15 + torch.rand(batch, 256, generator=gen, dtype=torch.float64) * 1.85


def test_conv_shapes():
    network = build(
        CONV, dataset="16x16_mnist", readout="mean_membrane", sim_time=1.0, **{"dt": 0.1}
    )
    shapes = {n: b.out_shape for n, b in network.spec.blocks.items()}
    assert shapes["pool"] == (4, 8, 8) and shapes["conv2"] == (4, 6, 6)
    assert shapes["sum_pool"] == (4, 5, 5) and shapes["avg"] == (4, 2, 2)
    assert network.blocks["conv2"].weight.shape == (4, 2, 3, 3)
    network.eval()
    times = image_times(5)
    assert network(times)[0].shape == (5, 10)


def test_direct_encoding_is_the_image_in_every_step():
    cfg = config(CONV, dataset="16x16_mnist", readout="mean_membrane", sim_time=1.0)
    cfg["dataset"]["encoding"] = {"type": "direct"}
    network = build_network(config_from_dict(cfg), torch.Generator().manual_seed(0))
    network.eval()
    times = image_times(3)
    calls = []
    network.blocks["conv"].register_forward_pre_hook(lambda m, args: calls.append(args[0].shape))
    recorded = network.record(times)
    assert calls == []  # apply() is called directly on the constant image, once
    pixels = ((2.0 - times) / 1.85).clamp(0, 1).reshape(3, 1, 16, 16)
    expected_first = network.blocks["conv"].apply(pixels)
    assert recorded["input"].shape == (10, 3, 256)
    assert torch.equal(recorded["input"][0], recorded["input"][9])
    pooled = torch.nn.functional.max_pool2d(expected_first, 2).flatten(1)
    membrane = recorded["membrane_0"]
    torch.testing.assert_close(membrane[0], pooled)


MEMORY_SCRIPT = """
import resource, torch
from snnexp.config import config_from_dict
from snnexp.run.build import build_network
torch.set_num_threads(1)
blocks = [{{"type": "conv2d", "channels": 8, "kernel": 3}}, {{"type": "neurons"}},
          {{"type": "max_pool2d", "kernel": 2}}, {{"type": "flatten"}},
          {{"type": "linear", "features": 10}}, {{"type": "neurons"}}]
cfg = config_from_dict({{
    "dataset": {{"name": "16x16_mnist", "encoding": {{"type": "{encoding}"}}}},
    "model": {{"neuron": {{"type": "leaky", "tau_mem": 5.0}}, "dtype": "float32", "dt": 1.0,
              "sim_time": 100.0, "blocks": blocks}},
    "learning": {{"rule": "bptt", "loss": {{"type": "cross_entropy"}}}}}})
net = build_network(cfg)
times = torch.rand(50, 256) * 2
with torch.no_grad():
    net.steps = 100
    net(times)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    net.steps = {steps}
    net(times)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def peak_growth_kib(steps: int, encoding: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT.format(steps=steps, encoding=encoding)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("encoding", ["rate", "direct"])
def test_conv_inference_memory_is_flat_in_the_steps(encoding):
    """2000 steps of 50 samples x 8 x 14 x 14 conv neurons would hold 2000 x 50 x 1568 x 4 B =
    627 MB of spikes (and as much of currents) if the whole sequence were kept. Measured after
    a first run of 100 steps, so that one-time allocations do not count; the allocator's
    reuse of freed chunks varies by tens of MB from run to run."""
    short, long = peak_growth_kib(100, encoding), peak_growth_kib(2000, encoding)
    assert long - short < 100 * 1024, (short, long)


# --------------------------------------------------------------------------------------------
# messages


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ([5, OUT], "model.blocks[0]: expected a block (a mapping with a type"),
        ([{"features": 3}, OUT], "model.blocks[0]: no type; block types: linear, conv2d"),
        (
            [{"type": "liner", "features": 3}, OUT],
            "unknown block type 'liner'; did you mean 'linear'?",
        ),
        ([{"type": "linear", "name": 7, "features": 3}, OUT], "name must be a non-empty string"),
        (
            [{"type": "linear"}, OUT],
            "model.blocks[0] ('linear_0'): a linear block needs 'features'",
        ),
        (
            [{"type": "linear", "feature": 3}, OUT],
            "unknown key 'feature' for a linear block; did you mean 'features'?",
        ),
        ([{"type": "linear", "features": 0}, OUT], "features must be an integer >= 1, got 0"),
        ([LIN, {"type": "neurons", "model": "lif"}], "model must be one of synaptic, leaky"),
        ([LIN, {"type": "dropout", "p": 1.0}, OUT], "p must be a number in [0, 1), got 1.0"),
        ([{**LIN, "inputs": []}, OUT], "inputs must be a non-empty list of block names"),
        ([{**LIN, "inputs": [3]}, OUT], "cannot read the input 3; write inputs: [NAME, ...]"),
        (
            [{**LIN, "inputs": [{"block": "input", "delai": 1}]}, OUT],
            "unknown key(s) delai in the input",
        ),
        (
            [{**LIN, "inputs": [{"block": "input", "delay": -1}]}, OUT],
            "the delay of input 'input' must be a whole number of steps >= 0, got -1",
        ),
        (
            [{**LIN, "name": "x"}, {**OUT, "name": "x"}],
            "model.blocks[1] ('x'): the name 'x' is already taken",
        ),
        ([{**LIN, "name": "input"}, OUT], "the name 'input' is the name of the encoded data"),
        (
            [LIN, {**OUT, "inputs": ["linear_1"]}],
            "input 'linear_1' is not a block; did you mean 'linear_0'?",
        ),
        (
            [{**LIN, "name": "a", "inputs": ["input", "b"]}, {**OUT, "name": "b"}],
            "the blocks a -> b -> a form a cycle without delay",
        ),
        (
            [{"type": "conv2d", "channels": 2, "kernel": 3}, OUT],
            "conv2d needs (channels, height, width) input, got (4,)",
        ),
        (
            [{"type": "max_pool2d", "kernel": 2}, OUT],
            "a pooling block needs (channels, height, width) input",
        ),
        (
            [{**LIN, "name": "a", "inputs": [{"block": "a", "delay": 1}]}, OUT],
            "no path leads to it from 'input'",
        ),
        (
            [
                {**LIN, "name": "a"},
                {"type": "linear", "features": 4, "name": "b", "inputs": ["input"]},
                {"type": "sum", "inputs": ["a", "b"]},
                OUT,
            ],
            "its inputs are summed and need one shape, got 'a' (3,), 'b' (4,)",
        ),
        ([LIN, OUT, LIN], "the last block is the label layer and must be a neurons block"),
        (
            [{"type": "linear", "features": 5}, OUT],
            "the label layer has shape (5,) but the dataset has 3 classes",
        ),
        (
            [{**LIN, "name": "unused"}, {**LIN, "inputs": ["input"]}, OUT],
            "model.blocks[0] ('unused'): its output never reaches the label layer",
        ),
        ([], "model.blocks: needs at least one block"),
    ],
)
def test_graph_problems_name_the_block_and_the_fix(blocks, message):
    if not blocks:
        with pytest.raises(GraphError, match="needs at least one block"):
            parse_blocks(blocks, (4,), {}, 3)
        return
    with pytest.raises(ConfigError) as err:
        config_from_dict(config(blocks))
    assert message in str(err.value), str(err.value)


@pytest.mark.parametrize(
    ("dataset", "blocks", "message"),
    [
        (
            "16x16_mnist",
            [{"type": "conv2d", "channels": 3, "kernel": 3, "groups": 2}, OUT],
            "groups 2 must divide the input channels (1) and the output channels (3)",
        ),
        (
            "16x16_mnist",
            [{"type": "conv2d", "channels": 2, "kernel": 17}, OUT],
            "a kernel of 17 (padding 0) does not fit the input of 16x16",
        ),
        (
            "16x16_mnist",
            [{"type": "avg_pool2d", "kernel": 20}, OUT],
            "a kernel of 20 does not fit the input of 16x16",
        ),
    ],
)
def test_image_shape_problems(dataset, blocks, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(config(blocks, dataset=dataset))
    assert message in str(err.value)


def test_graph_config_needs_a_rule_that_trains_it_and_a_fitting_readout():
    cfg = config([LIN, OUT])
    cfg["learning"] = {"rule": "first_spike_et"}
    with pytest.raises(ConfigError, match="trains a sequential graph of first_spike blocks"):
        config_from_dict(cfg)
    cfg["learning"] = {"rule": "deep_r", "rewiring": {"connectivity": 0.5}}
    with pytest.raises(ConfigError, match=r"\(DEEP R\) rewires a stack: give model.layer_sizes"):
        config_from_dict(cfg)
    cfg = config([LIN, {**OUT, "spiking": False}])
    with pytest.raises(ConfigError, match="'spike_count' needs a spiking label layer"):
        config_from_dict(cfg)


def test_several_problems_are_reported_together():
    with pytest.raises(ConfigError) as err:
        config_from_dict(config([{"type": "linear"}, {"type": "neuron"}]))
    assert len(err.value.problems) == 2


def test_layers_too_large_to_save_keep_their_mean_counts(monkeypatch):
    from snnexp.data import EncodedSplit
    from snnexp.run import evaluate
    from snnexp.run.build import build_loss

    cfg = config_from_dict(config(CYCLE))
    network = build_network(cfg, torch.Generator().manual_seed(4))
    times = input_times(16)
    split = EncodedSplit("test", times, torch.arange(16) % 3, None)
    whole = evaluate.evaluate(network, build_loss(cfg), split, batch_size=5)
    monkeypatch.setattr(evaluate, "MAX_SAVED_HIDDEN_VALUES", 16 * 12 - 1)
    means = evaluate.evaluate(network, build_loss(cfg), split, batch_size=5)
    assert means.hidden == [None, None, None]
    for full, mean in zip(whole.hidden, means.hidden_means, strict=True):
        torch.testing.assert_close(mean, full.mean(dim=0))


def test_feature_maps_reshape_each_image_shaped_neurons_block_by_channel():
    """The feature-map figure reads trace_spikes_<k> of the k-th neurons block (config order)
    back into (steps, samples, C, H, W); flat blocks are left out; the raster is the fraction
    of a channel's neurons spiking per step."""
    from snnexp.config import NeuronConfig
    from snnexp.graph.build import neuron_defaults
    from snnexp.plots.feature_maps import channel_raster, feature_map_blocks, plot_feature_maps

    blocks = [
        {"type": "conv2d", "name": "conv", "channels": 2, "kernel": 3},
        {"type": "neurons", "name": "lif"},
        {"type": "flatten"},
        {"type": "linear", "features": 3},
        {"type": "neurons", "name": "out"},
    ]
    graph = parse_blocks(blocks, (1, 5, 5), neuron_defaults(NeuronConfig()), 3)
    spikes = torch.zeros(3, 1, 2, 3, 3)
    spikes[1, 0, 1, 2, 0] = 1.0
    spikes[2, 0, 0, :, :] = 1.0
    outputs = {
        "trace_spikes_0": spikes.flatten(2).numpy(),
        "trace_spikes_1": torch.zeros(3, 1, 3).numpy(),
    }
    found = feature_map_blocks(graph, outputs)
    assert [block.block for block in found] == ["lif"]
    assert found[0].spikes.shape == (3, 1, 2, 3, 3)
    assert found[0].spikes[1, 0, 1, 2, 0] == 1.0
    raster = channel_raster(found[0].spikes)
    assert raster.shape == (2, 3)
    assert raster[0].tolist() == [0.0, 0.0, 1.0]
    assert raster[1].tolist() == pytest.approx([0.0, 1 / 9, 0.0])
    figure = plot_feature_maps(found, 1.0, label="0")
    assert len(figure.axes) == 1 + 1 + 2  # raster, its colour bar, the two channels' maps


def test_a_new_block_type_is_one_registration_with_its_own_parameter_checks(monkeypatch):
    """The README's example: a block class plus one BlockType entry, whose parameter the
    shared checks do not know, is read, checked and run like the built-in ones."""
    from snnexp.graph.blocks import BLOCK_TYPES, Block, BlockType
    from snnexp.graph.parameters import positive_number

    class Scale(Block):
        def __init__(self, factor: float) -> None:
            super().__init__()
            self.factor = factor

        def apply(self, x: torch.Tensor) -> torch.Tensor:
            return self.factor * x

    scale = BlockType(
        {"factor": 1.0},
        lambda shape, p: shape,
        lambda p, ctx: Scale(p["factor"]),
        "its input times factor",
        checks={"factor": (positive_number, "a number > 0")},
    )
    monkeypatch.setitem(BLOCK_TYPES, "scale", scale)
    blocks = [
        {"type": "linear", "features": 3, "name": "fc"},
        {"type": "scale", "factor": 2.0, "name": "twice"},
        {"type": "neurons", "name": "out"},
    ]
    network = build(blocks[:1] + blocks[2:], seed=3)
    scaled = build(blocks, seed=3)
    assert isinstance(scaled.blocks["twice"], Scale)
    x = torch.randn(6, 4, dtype=torch.float64)
    fc = network.blocks["fc"].apply(x)
    assert torch.equal(scaled.blocks["twice"].apply(fc), 2.0 * fc)
    with pytest.raises(ConfigError, match=r"\('twice'\): factor must be a number > 0, got -1"):
        config_from_dict(config([*blocks[:1], {**blocks[1], "factor": -1}, blocks[2]]))


FIRST_SPIKE_BLOCKS = [
    {
        "type": "first_spike",
        "features": 30,
        "weight_mean": 1.5,
        "weight_std": 0.8,
        "bias_times": [0.9],
        "name": "hidden",
    },
    {
        "type": "first_spike",
        "features": 3,
        "weight_mean": 0.5,
        "weight_std": 0.8,
        "bias_times": [0.9],
        "name": "label",
    },
]


def first_spike_config(**model: object) -> dict:
    """A small ET config on Yin-Yang (the stack 4-30-3 unless ``model`` says otherwise)."""
    return {
        "dataset": {"train_size": 100, "val_size": 50, "test_size": 50},
        "model": {"layer_sizes": [30, 3], **model},
        "learning": {"rule": "first_spike_et"},
        "training": {"epochs": 1, "batch_size": 20},
    }


def test_a_first_spike_stack_is_a_sequential_graph_of_first_spike_blocks():
    """model.layer_sizes (with bias_times, weight_mean, weight_std) is the shorthand of a graph
    of first_spike blocks: both forms build the same network and train to bitwise the same
    weights."""
    from snnexp.run.trainer import Trainer

    stack = config_from_dict(first_spike_config())
    graph = config_from_dict(first_spike_config(blocks=FIRST_SPIKE_BLOCKS))
    assert graph.model.layer_sizes == [30, 3]
    assert graph.model.bias_times == stack.model.bias_times == [[0.9], [0.9]]
    assert graph.model.weight_mean == stack.model.weight_mean
    trained = []
    for cfg in (stack, graph):
        trainer = Trainer(cfg, progress=False)
        trainer.run(1, [])
        trained.append(trainer)
    a, b = (trainer.model.state_dict() for trainer in trained)
    assert (
        a.keys()
        == b.keys()
        == {"layers.0.weight", "layers.0.bias_times", "layers.1.weight", "layers.1.bias_times"}
    )
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert trained[0].history[-1]["val_accuracy"] == trained[1].history[-1]["val_accuracy"]


@pytest.mark.parametrize(
    ("blocks", "rule", "message"),
    [
        (FIRST_SPIKE_BLOCKS, "bptt", "first_spike blocks are exact first-spike layers, trained"),
        (
            [FIRST_SPIKE_BLOCKS[0], {"type": "dropout"}, FIRST_SPIKE_BLOCKS[1]],
            "first_spike_et",
            "a graph of first_spike blocks holds only first_spike blocks",
        ),
        (
            [FIRST_SPIKE_BLOCKS[0], {**FIRST_SPIKE_BLOCKS[1], "inputs": ["input"]}],
            "first_spike_et",
            "first_spike blocks form a sequential graph (each reads the block before it, "
            "'hidden', without delay); remove its inputs",
        ),
        (
            [FIRST_SPIKE_BLOCKS[0], {**FIRST_SPIKE_BLOCKS[1], "features": 4}],
            "first_spike_et",
            "the label layer has 4 neurons but the dataset has 3 classes; set features: 3",
        ),
        (
            [
                {k: v for k, v in FIRST_SPIKE_BLOCKS[0].items() if k != "weight_std"},
                FIRST_SPIKE_BLOCKS[1],
            ],
            "first_spike_et",
            "('hidden'): a first_spike block needs 'weight_std'",
        ),
        (
            [{**FIRST_SPIKE_BLOCKS[0], "weight_std": -1.0}, FIRST_SPIKE_BLOCKS[1]],
            "first_spike_et",
            "('hidden'): weight_std must be a number >= 0, got -1.0",
        ),
    ],
)
def test_first_spike_graph_problems(blocks, rule, message):
    cfg = first_spike_config(blocks=blocks)
    cfg["learning"]["rule"] = rule
    if rule == "bptt":
        cfg["learning"]["loss"] = {"type": "cross_entropy"}
    with pytest.raises(ConfigError) as err:
        config_from_dict(cfg)
    assert message in str(err.value)


POPULATIONS = [
    {"name": "a_in", "type": "linear", "features": 6, "inputs": ["input"]},
    {"name": "a", "type": "neurons", "inputs": ["a_in", "c_to_a"]},
    {"name": "a_to_b", "type": "linear", "features": 5, "inputs": [{"block": "a", "delay": 1}]},
    {"name": "b", "type": "neurons", "threshold": 0.8},
    {"name": "b_to_c", "type": "linear", "features": 4, "inputs": [{"block": "b", "delay": 1}]},
    {"name": "c", "type": "neurons", "tau_mem": 3.0},
    {"name": "c_to_a", "type": "linear", "features": 6, "inputs": [{"block": "c", "delay": 1}]},
    {"name": "out_in", "type": "linear", "features": 3, "inputs": [{"block": "c", "delay": 1}]},
    {"name": "out", "type": "neurons", "spiking": False},
]


def test_independent_neurons_blocks_of_a_delayed_cycle_step_as_one_population():
    """In a -> b -> c -> a with one-step delays the neurons blocks of a step are independent:
    those of one setting (a and c: c differs only in tau_mem) step as one population, b (another
    threshold) alone, with bitwise the outputs, gradients and traces of stepping each alone."""
    from snnexp.graph.fusion import cycle_stages, stage_units

    network = build(POPULATIONS, seed=4, readout="max_membrane")
    (cycle,) = [c for c in network.spec.schedule if network.spec.cyclic(c)]
    stages = cycle_stages(network.spec, cycle)
    assert [sorted(stage) for stage in stages] == [["a_to_b", "b_to_c", "c_to_a"], ["a", "b", "c"]]
    assert sorted(map(sorted, stage_units(stages[1], network.blocks))) == [["a", "c"], ["b"]]
    times = torch.rand(7, 4, dtype=torch.float64) * 1.5
    (s1, h1, g1, r1), (s2, h2, g2, r2) = run_at_fusion_levels(network, times, ("neurons", "none"))
    assert torch.equal(s1, s2)
    assert all(torch.equal(u, v) for u, v in zip(h1, h2, strict=True))
    assert g1.keys() == g2.keys() and all(torch.equal(g1[k], g2[k]) for k in g1)
    assert r1.keys() == r2.keys() and all(torch.equal(r1[k], r2[k]) for k in r1)
    assert s1.abs().sum() > 0 and any(h.sum() > 0 for h in h1)


def run_at_fusion_levels(network: GraphNetwork, times: torch.Tensor, levels: tuple) -> list:
    """Scores, hidden counts, gradients and recorded traces at each fusion level."""
    results = []
    for fuse in levels:
        network.fuse = fuse
        network.zero_grad()
        scores, hidden = network(times)
        scores.square().sum().backward()
        grads = {name: p.grad.clone() for name, p in network.named_parameters()}
        results.append((scores.detach(), hidden, grads, network.record(times[:2])))
    return results


THREE_POPULATIONS = [
    {"name": "a_in", "type": "linear", "features": 6, "bias": False, "inputs": ["input"]},
    {"name": "a", "type": "neurons", "inputs": ["a_in", "c_to_a"]},
    {"name": "a_to_b", "type": "linear", "features": 5, "inputs": [{"block": "a", "delay": 1}]},
    {"name": "b", "type": "neurons"},
    {
        "name": "b_to_c",
        "type": "linear",
        "features": 4,
        "bias": False,
        "bias_times": [0.3],
        "inputs": [{"block": "b", "delay": 1}],
    },
    {"name": "c", "type": "neurons", "inputs": ["b_to_c", "a_to_c"]},
    {
        "name": "c_to_a",
        "type": "linear",
        "features": 6,
        "bias": False,
        "inputs": [{"block": "c", "delay": 1}],
    },
    {"name": "a_to_c", "type": "linear", "features": 4, "inputs": [{"block": "a", "delay": 2}]},
    {"name": "out_in", "type": "linear", "features": 3, "inputs": [{"block": "c", "delay": 1}]},
    {"name": "out", "type": "neurons", "spiking": False},
]


RING = [
    {**block, "inputs": ["b_to_c"]} if block["name"] == "c" else block
    for block in THREE_POPULATIONS
    if block["name"] != "a_to_c"
]
"""a -> b -> c -> a alone: the population's own last spikes are the product's input."""


@pytest.mark.parametrize(
    ("blocks", "fused", "sources"),
    [
        (RING, {"a_to_b", "b_to_c", "c_to_a"}, {("a", "b", "c"): [("a", 1), ("b", 1), ("c", 1)]}),
        (POPULATIONS, {"c_to_a", "b_to_c"}, {("a", "c"): [("c", 1), ("b", 1)]}),
        (
            THREE_POPULATIONS,
            {"a_to_b", "b_to_c", "c_to_a", "a_to_c"},
            {("a", "b", "c"): [("a", 1), ("b", 1), ("c", 1), ("a", 2)]},
        ),
    ],
)
def test_delayed_linear_blocks_of_a_cycle_fuse_into_the_populations_reading_them(
    blocks, fused, sources
):
    """With fuse="all" the delayed linear blocks read only by fused populations become one
    matrix product per population and step (their biases and bias spikes included): the same
    spikes as stepping every block alone, scores, gradients and membranes equal to rounding.
    A block read by a population that steps alone (POPULATIONS' a_to_b) stays a block."""
    from snnexp.graph.fusion import JoinedSynapses, absorbed_linears

    network = build(blocks, seed=4, readout="max_membrane")
    (cycle,) = [c for c in network.spec.schedule if network.spec.cyclic(c)]
    groups = {name for unit in sources for name in unit}
    absorbed = absorbed_linears(network.spec, network.blocks, cycle, groups)
    assert absorbed == fused
    for unit, expected in sources.items():
        assert JoinedSynapses.of(network.spec, unit, absorbed).sources == expected
    times = torch.rand(9, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    (s1, h1, g1, r1), (s2, h2, g2, r2) = run_at_fusion_levels(network, times * 1.5, ("all", "none"))
    assert all(torch.equal(u, v) for u, v in zip(h1, h2, strict=True))
    assert any(h.sum() > 0 for h in h1)
    torch.testing.assert_close(s1, s2, rtol=1e-12, atol=1e-12)
    assert g1.keys() == g2.keys()
    for key in g1:
        torch.testing.assert_close(g1[key], g2[key], rtol=1e-10, atol=1e-12, msg=key)
    assert any(g1[key].abs().sum() > 0 for key in g1 if key.split(".")[1] in fused)
    assert r1.keys() == r2.keys()
    for key in r1:
        torch.testing.assert_close(r1[key], r2[key], rtol=1e-12, atol=1e-12, msg=key)
