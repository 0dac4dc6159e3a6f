"""The CUDA paths give what the CPU gives: exact layers, time-stepped networks, DEEP R, runs.

These tests run where PyTorch sees a CUDA GPU and skip elsewhere (CI has none). The rest of the
suite also exercises the GPU there: the command-line tests train with ``device: auto``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runs import invoke, train_run
from deep_r_checks import assert_step_invariants
from tiny_networks import tiny_network

from snnexp.data.encoding import (
    SpikeEncoder,
    interpolated_latency_spike_train,
    latency_spike_train,
)
from snnexp.functional.cuba_exact import SteppedSimulation, simulate_layer
from snnexp.functional.event.dt import DEFAULT_DT_NEURON, first_spike_dt
from snnexp.functional.event.et import first_spike_et
from snnexp.functional.neuron import DEFAULT_NEURON
from snnexp.rules.deep_r import DeepR, RewiringParams
from snnexp.run.inference import evaluate_saved, load_saved_network
from tests.test_bptt_life_cycle import TINY_BPTT

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA GPU here: these tests compare the GPU paths with the CPU",
)
GPU = torch.device("cuda")
PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


def on_both(fn, *tensors: torch.Tensor):
    """fn's outputs and the gradients of its inputs, once on the CPU and once on the GPU."""
    results = []
    for device in (torch.device("cpu"), GPU):
        inputs = [t.detach().to(device).requires_grad_(True) for t in tensors]
        out = fn(*inputs)
        out.backward(torch.ones_like(out))
        results.append([out.detach().cpu()] + [t.grad.cpu() for t in inputs])
    return results


@pytest.mark.parametrize(
    "layer, params",
    [(first_spike_et, DEFAULT_NEURON), (first_spike_dt, DEFAULT_DT_NEURON)],
    ids=["et", "dt"],
)
def test_exact_layers_give_the_cpu_times_and_gradients(layer, params):
    generator = torch.Generator().manual_seed(0)
    times = 0.15 + 1.85 * torch.rand(200, 40, generator=generator, dtype=torch.float64)
    times[::7, 3] = torch.inf
    weights = 0.4 + torch.randn(40, 30, generator=generator, dtype=torch.float64)
    coeffs = torch.randn(200, 30, generator=generator, dtype=torch.float64)

    def loss_terms(t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        out = layer(t, w, params)
        return torch.where(torch.isfinite(out), out, 0.0) * coeffs.to(out.device)

    (cpu_terms, cpu_dt, cpu_dw), (gpu_terms, gpu_dt, gpu_dw) = on_both(loss_terms, times, weights)
    assert torch.count_nonzero(cpu_terms) > 1000
    np.testing.assert_allclose(gpu_terms.numpy(), cpu_terms.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(gpu_dt.numpy(), cpu_dt.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gpu_dw.numpy(), cpu_dw.numpy(), rtol=1e-9, atol=1e-10)


def test_exact_layer_gradients_are_the_same_in_every_run():
    """The weight gradients sum many (sample, input) terms into each synapse: in a fixed order."""
    generator = torch.Generator().manual_seed(1)
    times = (0.15 + 1.85 * torch.rand(500, 50, generator=generator, dtype=torch.float64)).to(GPU)
    weights = (0.4 + torch.randn(50, 40, generator=generator, dtype=torch.float64)).to(GPU)
    gradients = []
    for _ in range(3):
        w = weights.clone().requires_grad_(True)
        out = first_spike_et(times, w, DEFAULT_NEURON)
        torch.where(torch.isfinite(out), out, 0.0).sum().backward()
        gradients.append(w.grad)
    assert torch.count_nonzero(gradients[0]) > 1000
    assert torch.equal(gradients[0], gradients[1]) and torch.equal(gradients[0], gradients[2])
    assert not torch.are_deterministic_algorithms_enabled()


def test_spikes_on_step_boundaries_fall_into_the_cpu_steps():
    """0.3 / 0.1 is 2.9999999999999996: a spike at t = 0.3 belongs to step 2 on every device."""
    dt = 0.1
    times = torch.tensor([[k / 10 for k in range(30)]], dtype=torch.float64)
    for encode in (latency_spike_train, interpolated_latency_spike_train):
        cpu = encode(times, dt, 0, 32)
        assert torch.equal(encode(times.to(GPU), dt, 0, 32).cpu(), cpu)
    sim = SteppedSimulation(DEFAULT_NEURON, dt, 3.2)
    weights = torch.full((30, 2), 0.05, dtype=torch.float64)
    cpu = simulate_layer(times, weights, sim, record=True)
    gpu = simulate_layer(times.to(GPU), weights.to(GPU), sim, record=True)
    assert torch.equal(gpu.spikes.cpu(), cpu.spikes)
    np.testing.assert_allclose(gpu.membrane.cpu().numpy(), cpu.membrane.numpy(), atol=1e-12)


def test_time_stepped_network_gives_the_cpu_scores_and_gradients():
    cpu_net = tiny_network(40, 9, hidden=16, seed=3)
    gpu_net = copy.deepcopy(cpu_net).to(GPU)
    times = 0.15 + 1.85 * torch.rand(32, 5, dtype=torch.float64)
    grads = []
    for net, device in ((cpu_net, "cpu"), (gpu_net, GPU)):
        scores, _ = net(times.to(device))
        (scores * torch.arange(3, device=device)).sum().backward()
        grads.append([scores.detach().cpu()] + [p.grad.cpu() for p in net.parameters()])
    assert grads[0][0].sum() > 0
    for cpu, gpu in zip(*grads, strict=True):
        np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), rtol=1e-9, atol=1e-9)


def test_deep_r_on_the_gpu_keeps_its_invariants_and_rewires_as_on_the_cpu():
    runs = []
    for device in (torch.device("cpu"), GPU):
        init = torch.Generator().manual_seed(0)
        weights = [
            torch.nn.Parameter(torch.randn(s, generator=init, dtype=torch.float64).to(device))
            for s in [(30, 20), (20, 5)]
        ]
        optimizer = torch.optim.SGD(weights, lr=0.05)
        params = RewiringParams(0.2, l1=0.01, temperature=0.01, signs="dale", scope="global")
        deep_r = DeepR(weights, optimizer, params, torch.Generator().manual_seed(1))
        signs = [s.clone() for s in deep_r.signs]
        gradients = torch.Generator().manual_seed(2)
        rewired = 0
        for _ in range(100):
            for weight in weights:
                draw = torch.randn(weight.shape, generator=gradients, dtype=weight.dtype)
                weight.grad = draw.to(device)
            rewired += deep_r.step()
            assert deep_r.active_count() == sum(deep_r.budgets())
            assert_step_invariants(weights, deep_r, signs)
        assert rewired > 0
        runs.append(([m.cpu() for m in deep_r.active], [w.detach().cpu() for w in weights]))
    (cpu_masks, cpu_weights), (gpu_masks, gpu_weights) = runs
    for cpu, gpu in zip(cpu_masks, gpu_masks, strict=True):
        assert torch.equal(cpu, gpu)
    for cpu, gpu in zip(cpu_weights, gpu_weights, strict=True):
        np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "name, tolerance",
    [
        ("yin_yang_et", 0.0),
        ("yin_yang_dt", 0.0),
        ("yin_yang_deep_r", 0.0),
        ("yin_yang_bptt", 0.002),
    ],
)
def test_pretrained_networks_classify_as_on_the_cpu(name, tolerance):
    """float64 exact networks: the same predictions; the float32 BPTT network: within 2 samples."""
    accuracies = [
        evaluate_saved(load_saved_network(PRETRAINED / name, device=device), "test").accuracy
        for device in ("cpu", "cuda")
    ]
    assert accuracies[1] == pytest.approx(accuracies[0], abs=tolerance)


RATE_CODED_BPTT = {key: TINY_BPTT[key] for key in ("dataset", "model", "learning")}
"""The rate-coded BPTT network of the life-cycle tests, trained by the tiny CLI runs."""


def test_rate_coded_spikes_are_drawn_on_the_gpu():
    times = (2.0 - 1.85 * torch.rand(64, 5)).to(GPU)
    encoder = SpikeEncoder("rate", dt=0.1)
    generator = encoder.new_generator(GPU, 7)
    assert generator.device.type == "cuda"
    spikes = encoder(times, 0, 30, generator)
    assert spikes.device.type == "cuda"
    assert torch.equal(spikes, encoder(times, 0, 30, encoder.new_generator(GPU, 7)))
    assert 0.2 < spikes.mean().item() < 0.8
    assert encoder.training_generator(torch.Generator(), GPU, 7).device.type == "cuda"


def test_a_gpu_run_with_spikes_drawn_on_the_gpu_resumes_bitwise(tmp_path):
    whole = train_run(
        tmp_path,
        {**RATE_CODED_BPTT, "training": {"epochs": 4, "savepoints": []}},
        results="whole",
        options=("--device", "cuda"),
    )
    stopped = train_run(
        tmp_path,
        {**RATE_CODED_BPTT, "training": {"epochs": 2, "savepoints": []}},
        results="stopped",
        options=("--device", "cuda"),
    )
    result = invoke("continue", stopped, "2", "4", "--device", "cuda", "--quiet")
    assert result.exit_code == 0, result.output
    a = torch.load(whole / "epoch_4" / "checkpoint.pt", weights_only=True)
    b = torch.load(stopped / "epoch_4" / "checkpoint.pt", weights_only=True)
    assert a["rng"]["input_generator"] is not None
    assert torch.equal(a["rng"]["input_generator"], b["rng"]["input_generator"])
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["history"]["train_loss"] == b["history"]["train_loss"]


def test_a_cpu_run_continued_on_the_gpu_says_its_input_spikes_start_anew(tmp_path):
    overrides = {**RATE_CODED_BPTT, "training": {"epochs": 2, "savepoints": []}}
    run_dir = train_run(tmp_path, overrides, options=("--device", "cpu"))
    result = invoke("continue", run_dir, "2", "3", "--device", "cuda", "--quiet")
    assert result.exit_code == 0, result.output
    assert (
        "holds no state of the cuda generator of the input spikes"
        in (run_dir / "log.txt").read_text()
    )


def test_a_run_trained_on_the_gpu_is_evaluated_on_the_cpu(tmp_path):
    overrides = {"training": {"epochs": 3, "savepoints": []}}
    run_dir = train_run(tmp_path, overrides, options=("--device", "cuda"))
    saved = np.load(run_dir / "epoch_3" / "outputs_test.npz")
    result = invoke("inference", run_dir, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert f"accuracy {100 * float(saved['accuracy']):.2f} %" in result.output
