"""Time-stepped simulator: exact propagation, agreement with the exact ET and DT layers, and
stepped evaluation of saved networks (`snnexp inference --simulator stepped`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from snnexp.cli import main
from snnexp.functional.cuba_exact import (
    SteppedSimulation,
    cuba_step,
    initial_state,
    propagator,
    simulate_layer,
    simulate_network,
)
from snnexp.functional.event.dt import dt_spike_times
from snnexp.functional.event.et import et_spike_times
from snnexp.functional.neuron import NeuronParams
from snnexp.modules.first_spike import FirstSpikeLayer, FirstSpikeNetwork, SteppedNetwork

DT = 1e-3
GRAZE_TOLERANCE = 1e-4
"""A disagreement between the exact and the stepped model is allowed only where the exact
membrane is above threshold for less than one step and by at most this much (a graze)."""


def exact_membrane(
    t: np.ndarray, input_times: np.ndarray, weights: np.ndarray, p: NeuronParams
) -> np.ndarray:
    """u at the times t (len(t), n_outputs) as the closed-form sum of PSPs."""
    delay = t[:, None] - input_times[None, :]
    causal = np.isfinite(delay) & (delay > 0)
    delay = np.where(causal, delay, 0.0)
    if math.isclose(p.tau_mem, p.tau_syn):
        kernel = delay / p.tau_syn * np.exp(-delay / p.tau_syn)
    else:
        scale = p.tau_syn / (p.tau_mem - p.tau_syn)
        kernel = scale * (np.exp(-delay / p.tau_mem) - np.exp(-delay / p.tau_syn))
    return p.leak + np.where(causal, kernel, 0.0) @ weights / p.g_leak


def test_propagator_is_the_matrix_exponential():
    """d/dt (I, u - E_L) = M (I, u - E_L) with M = [[-1/tau_s, 0], [1/C_m, -1/tau_m]]."""
    for tau_syn, tau_mem in [(1.0, 1.0), (1.0, 2.0), (0.7, 0.3), (1.0, 1.0 + 1e-10)]:
        p = NeuronParams(tau_syn=tau_syn, tau_mem=tau_mem, g_leak=1.7)
        for h in (1e-3, 0.37, 2.5):
            m = torch.tensor(
                [[-1 / tau_syn, 0.0], [1 / (p.g_leak * tau_mem), -1 / tau_mem]],
                dtype=torch.float64,
            )
            expm = torch.linalg.matrix_exp(m * h)
            step = propagator(p, h)
            assert step.syn_decay == pytest.approx(expm[0, 0].item(), rel=1e-12)
            assert step.mem_decay == pytest.approx(expm[1, 1].item(), rel=1e-12)
            assert step.syn_to_mem == pytest.approx(expm[1, 0].item(), rel=1e-8, abs=1e-15)


@pytest.mark.parametrize("tau_mem", [1.0, 2.0, 3.0])
def test_recorded_traces_equal_the_exact_solution(tau_mem):
    """Off-grid inputs are delivered exactly, so u and I at every step end are exact; there is no
    reset, so the membrane is recorded on after the first spike."""
    p = NeuronParams(tau_syn=1.0, tau_mem=tau_mem, threshold=0.5, leak=-0.2, g_leak=1.3)
    times = torch.tensor([[0.1234, 0.5, 1.00051, torch.inf]], dtype=torch.float64)
    weights = torch.tensor([[4.0, 0.3], [3.0, -0.4], [-1.0, 0.1], [9.0, 9.0]], dtype=torch.float64)
    rec = simulate_layer(times, weights, SteppedSimulation(p, 0.01, 6.0), record=True)
    grid = rec.times.numpy()
    assert len(grid) == 600 and grid[-1] == pytest.approx(6.0)
    u = exact_membrane(grid, times[0].numpy(), weights.numpy(), p)
    np.testing.assert_allclose(rec.membrane[:, 0].numpy(), u, atol=1e-12)
    delay = grid[:, None] - times[0].numpy()[None, :]
    current = np.where(delay >= 0, np.exp(-np.where(delay >= 0, delay, 0.0)), 0.0)
    np.testing.assert_allclose(rec.current[:, 0].numpy(), current @ weights.numpy(), atol=1e-12)
    spikes = rec.spikes[:, 0].numpy()
    assert spikes[:, 0].sum() == 1 and spikes[:, 1].sum() == 0
    first = np.argmax(spikes[:, 0])
    assert rec.first_spike[0, 0].item() == pytest.approx(grid[first])
    assert u[first - 1, 0] < p.threshold <= u[first, 0]
    assert torch.isinf(rec.first_spike[0, 1])
    assert (u[first:, 0] < p.threshold).any()  # the membrane decays again: no reset, no stop


def test_step_function_is_pure():
    p = NeuronParams()
    state = initial_state((2, 3), p, torch.zeros(1, dtype=torch.float64))
    step = propagator(p, 0.1)
    new, spikes = cuba_step(state, torch.full((2, 3), 5.0, dtype=torch.float64), 0.0, 0.1, step, p)
    assert torch.all(state.current == 0) and torch.isinf(state.first_spike).all()
    assert torch.all(new.current == 5.0) and not spikes.any()
    later, _ = cuba_step(new, 0.0, 0.0, 0.2, step, p)
    assert later.membrane[0, 0].item() == pytest.approx(5.0 * step.syn_to_mem)


def _random_layer(rule: str, seed: int):
    """Random parameters, weights and input times with +inf inputs and two bias spikes."""
    gen = torch.Generator().manual_seed(seed)
    tau_syn = 0.5 + torch.rand(1, generator=gen).item()
    tau_mem = tau_syn * (2.0 if rule == "dt" else 1.0)
    p = NeuronParams(
        tau_syn=tau_syn,
        tau_mem=tau_mem,
        threshold=0.5 + torch.rand(1, generator=gen).item(),
        leak=-0.5 * torch.rand(1, generator=gen).item(),
        g_leak=0.5 + torch.rand(1, generator=gen).item(),
    )
    batch, n_in, n_out = 12, 10, 16
    times = torch.rand(batch, n_in, generator=gen, dtype=torch.float64) * 3.0
    times[torch.rand(batch, n_in, generator=gen) < 0.15] = torch.inf
    times[0] = torch.inf  # a sample with bias spikes only
    bias = torch.tensor([0.9, 1.7], dtype=torch.float64).expand(batch, -1)
    times = torch.cat([times, bias], dim=1)
    scale = (p.threshold - p.leak) * p.g_leak * (1.6 if rule == "dt" else 1.2)
    weights = (torch.randn(n_in + 2, n_out, generator=gen, dtype=torch.float64) + 0.15) * scale
    spike_times = dt_spike_times if rule == "dt" else et_spike_times
    return p, times, weights, spike_times(times, weights, p)


def _peak_excess(
    t_from: float, t_to: float, times: np.ndarray, weights: np.ndarray, p: NeuronParams
) -> float:
    """How far the exact membrane rises above threshold on [t_from, t_to]."""
    grid = np.linspace(t_from, t_to, 201)
    return float(exact_membrane(grid, times, weights[:, None], p).max() - p.threshold)


@pytest.mark.parametrize("rule", ["et", "dt"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_exact_and_stepped_first_spikes_agree(rule, seed):
    """Every stepped first spike lies in [t_exact, t_exact + dt); a neuron whose stepped membrane
    never reaches threshold has t_exact = +inf; disagreements only at threshold grazes."""
    p, times, weights, exact = _random_layer(rule, seed)
    sim_time = 12.0
    rec = simulate_layer(times, weights, SteppedSimulation(p, DT, sim_time), record=True)
    stepped = rec.first_spike
    assert torch.isfinite(exact).float().mean() > 0.2 and torch.isinf(exact).float().mean() > 0.2
    assert exact[torch.isfinite(exact)].max() < sim_time - 1.0

    never = rec.membrane.amax(dim=0) < p.threshold
    assert torch.equal(never, torch.isinf(stepped))
    late = stepped - exact
    agree = (torch.isinf(exact) & torch.isinf(stepped)) | ((late >= -1e-9) & (late <= DT + 1e-9))
    grazes = torch.nonzero(~agree).tolist()
    assert len(grazes) <= 0.01 * exact.numel()
    for b, j in grazes:
        t_exact, t_step = exact[b, j].item(), stepped[b, j].item()
        start = min(t_exact, t_step)
        excess = _peak_excess(start, start + DT, times[b].numpy(), weights[:, j].numpy(), p)
        assert 0 <= excess < GRAZE_TOLERANCE, (b, j, t_exact, t_step, excess)


def test_network_simulation_matches_layers_and_module():
    gen = torch.Generator().manual_seed(5)
    p = NeuronParams(tau_syn=1.0, tau_mem=2.0)
    layers = [
        FirstSpikeLayer(4, 30, p, bias_times=[0.9], rule="first_spike_dt"),
        FirstSpikeLayer(30, 3, p, bias_times=[0.9, 1.1], rule="first_spike_dt"),
    ]
    layers[0].reset_parameters(3.0, 1.5, generator=gen)
    layers[1].reset_parameters(1.0, 1.5, generator=gen)
    network = FirstSpikeNetwork(layers)
    inputs = 0.15 + 1.85 * torch.rand(20, 4, generator=gen, dtype=torch.float64)
    label, (hidden,) = SteppedNetwork(network, 0.01, 12.0)(inputs)
    bias0 = torch.full((20, 1), 0.9, dtype=torch.float64)
    first = simulate_layer(
        torch.cat([inputs, bias0], 1), layers[0].weight.detach(), SteppedSimulation(p, 0.01, 12.0)
    ).first_spike
    torch.testing.assert_close(hidden, first)
    assert torch.isfinite(hidden).any() and label.shape == (20, 3)
    exact_label, (exact_hidden,) = network(inputs)
    both = torch.isfinite(hidden) & torch.isfinite(exact_hidden)
    late = (hidden - exact_hidden.detach())[both]
    assert late.min() >= -1e-9 and late.max() <= 0.01 + 1e-9


def test_reference_network_keeps_its_accuracy_when_stepped(reference_dir):
    """The published Yin-Yang ET network (96.0 % exact) at dt = 0.01."""
    ref = reference_dir("yin_yang_et_300epochs")
    inputs = torch.tensor(np.load(ref / "test_input_times.npy"))
    weights = [torch.tensor(np.load(ref / f"weights_layer{k}.npy")) for k in range(2)]
    bias = [torch.tensor([0.9], dtype=torch.float64)] * 2
    labels = np.load(ref / "test_labels.npy")
    label_times, (hidden,) = simulate_network(
        inputs, weights, bias, [NeuronParams()] * 2, 0.01, 4.0
    )
    out = label_times.numpy()
    predicted = np.where(np.isfinite(out.min(1)), out.argmin(1), -1)
    assert (predicted == labels).mean() >= 0.95
    hidden_ref = np.load(ref / "test_hidden_times.npy")
    both = np.isfinite(hidden_ref) & np.isfinite(hidden.numpy())
    assert both.sum() > 0.99 * np.isfinite(hidden_ref).sum()
    late = hidden.numpy()[both] - hidden_ref[both]
    assert late.min() >= -1e-9 and late.max() <= 0.01 + 1e-9


# --------------------------------------------------------------------------------------------
# the command line

TINY = {
    "name": "tiny",
    "dataset": {"name": "yin_yang", "train_size": 150, "val_size": 60, "test_size": 60},
    "model": {"layer_sizes": [12, 3]},
    "training": {"epochs": 1, "batch_size": 50, "batch_size_eval": 60},
}


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stepped")
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    result = invoke("train", config, "--results-dir", folder / "results", "--quiet")
    assert result.exit_code == 0, result.output
    (run_dir,) = (folder / "results").iterdir()
    return run_dir


def test_inference_with_the_stepped_simulator_prints_both_accuracies(tiny_run):
    result = invoke("inference", tiny_run, "--simulator", "stepped", "--dt", "0.01")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "accuracy" in line]
    assert len(lines) == 2
    assert "| exact: accuracy" in lines[0]
    assert "| stepped dt=0.01 sim_time=4: accuracy" in lines[1]
    plain = invoke("inference", tiny_run)
    assert len([line for line in plain.output.splitlines() if "accuracy" in line]) == 1


def test_model_simulator_stepped_in_the_run_config_is_honoured(tiny_run, tmp_path):
    config = yaml.safe_load((tiny_run / "config.yaml").read_text())
    config["model"].update(simulator="stepped", dt=0.02, sim_time=5.0)
    (tiny_run / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        result = invoke("inference", tiny_run)
        assert result.exit_code == 0, result.output
        assert "| stepped dt=0.02 sim_time=5: accuracy" in result.output
        too_coarse = invoke("inference", tiny_run, "--dt", "9")
        assert too_coarse.exit_code != 0 and "--dt" in too_coarse.output
    finally:
        config["model"].update(simulator="exact", dt=0.01, sim_time=4.0)
        (tiny_run / "config.yaml").write_text(yaml.safe_dump(config))


def test_training_with_the_stepped_simulator_is_refused(tmp_path):
    data = {**TINY, "model": {**TINY["model"], "simulator": "stepped"}}
    config = tmp_path / "stepped.yaml"
    config.write_text(yaml.safe_dump(data))
    result = invoke("train", config, "--results-dir", tmp_path / "results", "--quiet")
    assert result.exit_code == 1
    assert "cannot train: training uses the exact first-spike times" in result.output
    assert "Traceback" not in result.output
