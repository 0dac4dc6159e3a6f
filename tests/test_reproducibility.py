"""The same config and seed give bitwise the same run with any number of CPU threads: always for
the exact first-spike rules, with training.thread_independent for BPTT."""

from __future__ import annotations

import pytest
import torch

from snnexp.config import ConfigError, config_from_dict
from snnexp.functional import fixed_partition
from snnexp.functional import threads as worker_threads
from snnexp.functional.event import scan
from snnexp.run.build import build_loss, build_network, build_optimizer
from tests.cli_runs import train_run
from tests.numeric import assert_same

WIDE = {
    "dataset": {"train_size": 600},
    "model": {"layer_sizes": [300, 3]},
    "training": {"epochs": 2, "batch_size": 100, "savepoints": []},
}


@pytest.mark.parametrize("rule", ["first_spike_et", "first_spike_dt"])
def test_first_spike_training_is_bitwise_the_same_with_1_2_and_4_threads(
    tmp_path, monkeypatch, rule
):
    """Layers over PARALLEL_SIZE and GRADIENT_GROUPS_SIZE (here: every layer) split their
    samples among the threads; weights, optimizer state, history (but wall time) and saved
    outputs must not change."""
    monkeypatch.setattr(scan, "PARALLEL_SIZE", 0)
    monkeypatch.setattr(scan, "GRADIENT_GROUPS_SIZE", 0)
    overrides = {**WIDE, "learning": {"rule": rule}}
    if rule == "first_spike_dt":
        overrides["model"] = {**WIDE["model"], "neuron": {"tau_mem": 2.0, "tau_syn": 1.0}}
    runs = {}
    for threads in (1, 2, 4):
        run_dir = train_run(
            tmp_path, overrides, results=f"threads_{threads}", options=("--threads", threads)
        )
        checkpoint = torch.load(run_dir / "epoch_2" / "checkpoint.pt", weights_only=True)
        checkpoint["history"].pop("seconds")
        checkpoint.pop("config")
        outputs = (run_dir / "epoch_2" / "outputs_test.npz").read_bytes()
        runs[threads] = (checkpoint, outputs)
    assert {2, 4} <= set(worker_threads.WORKERS), "the work was not shared among threads"
    reference, reference_outputs = runs[1]
    for threads in (2, 4):
        checkpoint, outputs = runs[threads]
        assert_same(checkpoint, reference, f"checkpoint with {threads} threads")
        assert outputs == reference_outputs, threads


BPTT_STACK = {
    "dataset": {"train_size": 300, "encoding": {"type": "latency", "interpolate": True}},
    "model": {
        "neuron": {"type": "leaky", "tau_mem": 1.0},
        "layer_sizes": [120, 3],
        "recurrent": [True, False],
        "bias_times": [[0.9], []],
        "weight_init": "uniform_fan_in",
        "weight_mean": [0.0, 0.0],
        "weight_std": [1.0, 1.0],
        "dtype": "float32",
        "dt": 0.05,
        "sim_time": 3.0,
        "output": "membrane",
        "readout": "max_membrane",
    },
    "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
}
BPTT_CYCLE = {
    **BPTT_STACK,
    "model": {
        "neuron": {"type": "leaky", "tau_mem": 1.0},
        "dtype": "float32",
        "dt": 0.05,
        "sim_time": 3.0,
        "readout": "max_membrane",
        "blocks": [
            {"name": "a_in", "type": "linear", "features": 100, "bias_times": [0.9]},
            {"name": "a", "type": "neurons", "inputs": ["a_in", "c_to_a"]},
            {
                "name": "a_to_b",
                "type": "linear",
                "features": 50,
                "inputs": [{"block": "a", "delay": 1}],
            },
            {"name": "b", "type": "neurons"},
            {
                "name": "b_to_c",
                "type": "linear",
                "features": 50,
                "inputs": [{"block": "b", "delay": 1}],
            },
            {"name": "c", "type": "neurons", "recurrent": True},
            {
                "name": "c_to_a",
                "type": "linear",
                "features": 100,
                "inputs": [{"block": "c", "delay": 1}],
            },
            {
                "name": "a_out",
                "type": "linear",
                "features": 3,
                "inputs": [{"block": "a", "delay": 1}],
            },
            {"name": "out", "type": "neurons", "spiking": False},
        ],
    },
}


@pytest.mark.parametrize("network", ["stack", "cycle"])
def test_bptt_training_with_thread_independent_is_bitwise_the_same_with_1_to_4_threads(
    tmp_path, network
):
    """training.thread_independent: the whole life cycle of a BPTT run (a recurrent stack with
    bias spikes; a graph whose cycle is fused and whose linear blocks have biases) gives the
    same checkpoints, history and outputs with 1, 2, 3 and 4 threads. Without the key the graph
    run's weights differ in the last bits with 3 and 4 threads on the CPU this was written on
    (torch splits the bias gradients' long sums among its threads)."""
    base = BPTT_STACK if network == "stack" else BPTT_CYCLE
    overrides = {
        **base,
        "training": {"epochs": 2, "batch_size": 100, "savepoints": [], "thread_independent": True},
    }
    runs = {}
    for threads in (1, 2, 3, 4):
        run_dir = train_run(
            tmp_path, overrides, results=f"threads_{threads}", options=("--threads", threads)
        )
        checkpoint = torch.load(run_dir / "epoch_2" / "checkpoint.pt", weights_only=True)
        checkpoint["history"].pop("seconds")
        checkpoint.pop("config")
        runs[threads] = (checkpoint, (run_dir / "epoch_2" / "outputs_test.npz").read_bytes())
    reference, reference_outputs = runs[1]
    for threads in (2, 3, 4):
        checkpoint, outputs = runs[threads]
        assert_same(checkpoint, reference, f"checkpoint with {threads} threads")
        assert outputs == reference_outputs, threads


def test_a_conv_graph_with_thread_independent_trains_bitwise_alike_with_1_to_4_threads():
    """Convolutions (strides, padding, groups), pooling and a linear read-out with bias: three
    Adam steps on 16x16 images give the same weights with any thread count (torch's own
    convolution gradients differ already between 1 and 3 threads for such layers)."""
    blocks = [
        {"type": "conv2d", "channels": 8, "kernel": 5},
        {"type": "max_pool2d", "kernel": 2},
        {"type": "neurons"},
        {"type": "conv2d", "channels": 8, "kernel": 3, "padding": 1, "groups": 2, "stride": 2},
        {"type": "neurons"},
        {"type": "flatten"},
        {"type": "linear", "features": 10},
        {"type": "neurons", "spiking": False},
    ]
    cfg = config_from_dict(
        {
            "dataset": {"name": "16x16_mnist", "encoding": {"type": "direct"}},
            "model": {
                "neuron": {"type": "leaky", "tau_mem": 5.0},
                "dtype": "float32",
                "dt": 1.0,
                "sim_time": 6.0,
                "readout": "mean_membrane",
                "blocks": blocks,
            },
            "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
            "training": {"thread_independent": True},
        }
    )
    gen = torch.Generator().manual_seed(3)
    times = 0.15 + torch.rand(3, 96, 256, generator=gen, dtype=torch.float32) * 1.85
    labels = torch.randint(10, (3, 96), generator=gen)
    weights = {}
    initial_threads = torch.get_num_threads()
    try:
        for threads in (1, 2, 3, 4):
            torch.set_num_threads(threads)
            network = build_network(cfg, torch.Generator().manual_seed(0))
            loss_fn = build_loss(cfg)
            optimizer = build_optimizer(cfg, network)
            for x, y in zip(times, labels, strict=True):
                optimizer.zero_grad()
                loss_fn(network(x)[0], y).backward()
                optimizer.step()
            weights[threads] = network.state_dict()
    finally:
        torch.set_num_threads(initial_threads)
    for threads in (2, 3, 4):
        assert_same(weights[threads], weights[1], f"weights with {threads} threads")


def test_thread_independent_refuses_learnable_time_constants():
    data = {
        "model": {"neuron": {"type": "leaky", "learn_tau": True}, "layer_sizes": [10, 3]},
        "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
        "training": {"thread_independent": True},
    }
    with pytest.raises(ConfigError, match=r"training.thread_independent: does not cover") as err:
        config_from_dict(data)
    assert "learn_tau in model.neuron" in str(err.value)
    assert "set learn_tau: false" in str(err.value)


@pytest.mark.parametrize("conv", [(1, 0, 1), (2, 1, 1), (1, 1, 2)])
def test_fixed_partition_products_equal_the_plain_ones_to_rounding(conv):
    """Values and gradients of the fixed-partition conv2d, linear and bias expansion agree with
    torch's own operations (float64: to 1e-12), for more rows than one part holds."""
    stride, padding, groups = conv
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(150, 4, 9, 9, generator=gen, dtype=torch.float64)
    weight = torch.randn(6, 4 // groups, 3, 3, generator=gen, dtype=torch.float64)
    bias = torch.randn(6, generator=gen, dtype=torch.float64)
    rows = torch.randn(7, 40, 5, generator=gen, dtype=torch.float64)
    matrix = torch.randn(5, 3, generator=gen, dtype=torch.float64)

    def outputs(fixed: bool) -> list[torch.Tensor]:
        leaves = [t.clone().requires_grad_(True) for t in (x, weight, bias, rows, matrix)]
        xs, ws, bs, rs, ms = leaves
        if fixed:
            y = fixed_partition.conv2d(xs, ws, bs, stride, padding, groups)
            z = fixed_partition.linear(rs, ms) + fixed_partition.expand_bias(bs[:3], (7, 40, 3))
        else:
            y = torch.nn.functional.conv2d(xs, ws, bs, stride, padding, 1, groups)
            z = rs @ ms + bs[:3]
        loss = (y * y.detach().cos()).sum() + (z * z.detach().sin()).sum()
        return [y, z, *torch.autograd.grad(loss, leaves)]

    assert len(fixed_partition.row_parts(150)) == 4
    for fixed, plain in zip(outputs(True), outputs(False), strict=True):
        torch.testing.assert_close(fixed, plain, rtol=1e-12, atol=1e-12)
