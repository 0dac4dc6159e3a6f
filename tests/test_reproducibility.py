"""The same config and seed give bitwise the same run with any number of CPU threads: always for
the exact first-spike rules, with training.thread_independent for BPTT."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from snnexp.config import config_from_dict
from snnexp.functional import fixed_partition
from snnexp.functional import threads as worker_threads
from snnexp.functional.event import scan
from snnexp.run.build import build_loss, build_network, build_optimizer, thread_mode
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
        "neuron": {"type": "leaky", "tau_mem": 1.0, "learn_tau": True},
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


@pytest.fixture
def small_parts(monkeypatch):
    """Parts small enough that the tiny test networks' products and pooling are split."""
    monkeypatch.setattr(fixed_partition, "MIN_MACS_PER_PART", 2**10)
    monkeypatch.setattr(fixed_partition, "MIN_ROWS_PER_PARTIAL", 64)


@pytest.mark.parametrize("network", ["stack", "cycle"])
def test_bptt_training_with_thread_independent_is_bitwise_the_same_with_1_to_4_threads(
    tmp_path, small_parts, network
):
    """training.thread_independent: the whole life cycle of a BPTT run (a recurrent stack with
    bias spikes and learnable time constants; a graph whose cycle is fused and whose linear
    blocks have biases) gives the same checkpoints, history and outputs with 1, 2, 3 and 4
    threads, its products split among the threads. Without the key the graph run's weights
    differ in the last bits with 3 and 4 threads on the CPU this was written on (torch splits
    the bias gradients' long sums among its threads)."""
    base = BPTT_STACK if network == "stack" else BPTT_CYCLE
    overrides = {
        **base,
        "training": {"epochs": 2, "batch_size": 100, "savepoints": [], "thread_independent": True},
    }
    worker_threads.WORKERS.clear()
    runs = {}
    for threads in (1, 2, 3, 4):
        run_dir = train_run(
            tmp_path, overrides, results=f"threads_{threads}", options=("--threads", threads)
        )
        assert torch.get_num_threads() == threads, "torch's thread count was not restored"
        checkpoint = torch.load(run_dir / "epoch_2" / "checkpoint.pt", weights_only=True)
        checkpoint["history"].pop("seconds")
        checkpoint.pop("config")
        runs[threads] = (checkpoint, (run_dir / "epoch_2" / "outputs_test.npz").read_bytes())
    assert {2, 3, 4} <= set(worker_threads.WORKERS), "the products were not shared"
    reference, reference_outputs = runs[1]
    for threads in (2, 3, 4):
        checkpoint, outputs = runs[threads]
        assert_same(checkpoint, reference, f"checkpoint with {threads} threads")
        assert outputs == reference_outputs, threads


def test_a_conv_graph_with_thread_independent_trains_bitwise_alike_with_1_to_4_threads(
    small_parts,
):
    """Convolutions (strides, padding, groups), max and average pooling and a linear read-out
    with bias: three Adam steps on 16x16 images, computed as the trainer does
    (``thread_mode``), give the same weights with any thread count (torch's own convolution
    gradients differ already between 1 and 3 threads for such layers)."""
    blocks = [
        {"type": "conv2d", "channels": 8, "kernel": 5},
        {"type": "max_pool2d", "kernel": 2},
        {"type": "neurons"},
        {"type": "conv2d", "channels": 8, "kernel": 3, "padding": 1, "groups": 2, "stride": 2},
        {"type": "neurons"},
        {"type": "avg_pool2d", "kernel": 2},
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
            with thread_mode(cfg):
                for x, y in zip(times, labels, strict=True):
                    optimizer.zero_grad()
                    loss_fn(network(x)[0], y).backward()
                    optimizer.step()
            weights[threads] = network.state_dict()
    finally:
        torch.set_num_threads(initial_threads)
    for threads in (2, 3, 4):
        assert_same(weights[threads], weights[1], f"weights with {threads} threads")


@pytest.mark.parametrize("conv", [(1, 0, 1), (2, 1, 1), (1, 1, 2)])
def test_fixed_partition_products_equal_the_plain_ones_to_rounding(small_parts, conv):
    """Values and gradients of the fixed-partition conv2d and linear product agree with torch's
    own operations (float64: to 1e-12), and pooling is bitwise torch's, for products split into
    several parts."""
    stride, padding, groups = conv
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(150, 4, 9, 9, generator=gen, dtype=torch.float64)
    weight = torch.randn(6, 4 // groups, 3, 3, generator=gen, dtype=torch.float64)
    bias = torch.randn(6, generator=gen, dtype=torch.float64)
    rows = torch.randn(7, 40, 50, generator=gen, dtype=torch.float64)
    matrix = torch.randn(50, 30, generator=gen, dtype=torch.float64)

    def outputs(fixed: bool) -> list[torch.Tensor]:
        leaves = [t.clone().requires_grad_(True) for t in (x, weight, bias, rows, matrix)]
        xs, ws, bs, rs, ms = leaves
        if fixed:
            y = fixed_partition.conv2d(xs, ws, bs, stride, padding, groups)
            z = fixed_partition.linear(rs, ms)
            pooled = [fixed_partition.pool2d(y, True, 2, 1), fixed_partition.pool2d(y, False, 3, 2)]
        else:
            y = torch.nn.functional.conv2d(xs, ws, bs, stride, padding, 1, groups)
            z = rs @ ms
            pooled = [F.max_pool2d(y, 2, 1), F.avg_pool2d(y, 3, 2)]
        loss = (y * y.detach().cos()).sum() + (z * z.detach().sin()).sum()
        loss = loss + sum((p * p.detach().cos()).sum() for p in pooled)
        return [y, z, *pooled, *torch.autograd.grad(loss, leaves)]

    assert fixed_partition.part_count(280 * 50 * 30, 280, 50) == 16
    for fixed, plain in zip(outputs(True), outputs(False), strict=True):
        torch.testing.assert_close(fixed, plain, rtol=1e-12, atol=1e-12)


def test_part_counts_are_powers_of_two_that_threads_share_evenly(monkeypatch):
    """Product parts and weight-gradient partials come in powers of two (1, 2, 4 or 8 threads
    then get equal shares): the 784-1000-10 BPTT network's input product (25 steps x batch 128)
    has 16 parts and its weight gradient 4 partials (3200 rows / 512 = 6, rounded down)."""
    assert [fixed_partition.power_of_two_below(n) for n in (0, 1, 2, 3, 5, 6, 8, 15)] == [
        1, 1, 2, 2, 4, 4, 8, 8,
    ]  # fmt: skip
    rows = 25 * 128
    assert fixed_partition.part_count(rows * 785 * 1000, rows, 785) == 16
    assert fixed_partition.part_count(12 * 2**22, 100) == 8
    assert fixed_partition.part_count(2**26, 3) == 2
    seen: list[int] = []
    original = fixed_partition.map_single_threaded

    def counting(work, parts, device):  # noqa: ANN001, ANN202
        seen.append(len(parts))
        return original(work, parts, device)

    monkeypatch.setattr(fixed_partition, "map_single_threaded", counting)
    weight = torch.rand(785, 1000, requires_grad=True)
    fixed_partition.linear(torch.rand(rows, 785), weight).sum().backward()
    assert seen == [16, 4]


@pytest.mark.parametrize(("environment", "layer"), [(None, "workqueue"), ("omp", "omp")])
def test_numba_loops_run_on_the_work_queue_unless_the_environment_names_a_layer(environment, layer):
    """snnexp's compiled parallel loops use Numba's work-queue threads (OpenMP's spin after each
    loop and slow down the products that follow); NUMBA_THREADING_LAYER still chooses."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    if environment is not None:
        env["NUMBA_THREADING_LAYER"] = environment
    code = (
        "import numba, numpy, snnexp.functional.leaky_cpu\n"
        "@numba.njit(parallel=True)\n"
        "def f(a):\n"
        "    for i in numba.prange(len(a)):\n"
        "        a[i] += 1\n"
        "f(numpy.zeros(4))\n"
        "print(numba.threading_layer())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == layer


def test_fixed_pooling_is_bitwise_torchs(small_parts):
    """Each sample is pooled on its own, so pooling in parts gives torch's values and gradients
    bitwise (max and average, overlapping windows)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(40, 3, 12, 12, generator=gen)
    for maximum, pool in ((True, F.max_pool2d), (False, F.avg_pool2d)):
        for kernel, stride in ((2, 2), (3, 2)):
            ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
            y = fixed_partition.pool2d(ours, maximum, kernel, stride)
            expected = pool(theirs, kernel, stride)
            grad = torch.rand(expected.shape, generator=gen)
            y.backward(grad)
            expected.backward(grad)
            assert torch.equal(y, expected) and torch.equal(ours.grad, theirs.grad)


def test_torch_single_threaded_restores_the_thread_count_and_nests():
    initial = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        with worker_threads.torch_single_threaded():
            assert torch.get_num_threads() == 1
            with worker_threads.torch_single_threaded():
                assert torch.get_num_threads() == 1
            parts = worker_threads.map_single_threaded(
                lambda _: torch.get_num_threads(), range(5), torch.device("cpu")
            )
            assert parts == [1] * 5 and 3 in worker_threads.WORKERS
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(initial)
