"""The compiled CPU kernels of the causal scan against the vectorised torch engine."""

from __future__ import annotations

import pytest
import torch

from snnexp.functional.event import scan
from snnexp.functional.event.dt import DEFAULT_DT_NEURON, first_spike_dt
from snnexp.functional.event.et import first_spike_et
from snnexp.functional.neuron import NeuronParams

RULES = {
    "et": (first_spike_et, NeuronParams(), 0.06),
    "dt": (first_spike_dt, DEFAULT_DT_NEURON, 0.1),
}


def _layer_inputs(seed: int, weight_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Nine samples of 260 inputs with 100 to 220 of them spiking, every tenth time repeated
    (ties, as black pixels give), and seven outputs from inhibitory to strongly excitatory:
    outputs spike early, late or never."""
    gen = torch.Generator().manual_seed(seed)
    times = torch.rand(9, 260, generator=gen, dtype=torch.float64) * 3
    times[:, ::10] = times[:, 5:6]
    for row in range(9):
        times[row, 100 + 15 * row :] = torch.inf
    means = torch.tensor([6.5, -1.5, 10.0, 2.5, 0.0, 8.0, 5.0], dtype=torch.float64)
    weights = (torch.randn(260, 7, generator=gen, dtype=torch.float64) + means) * weight_scale
    return times, weights


def _run(layer, params, times, weights, input_grad=True):
    w = weights.clone().requires_grad_(True)
    t = times.clone().requires_grad_(input_grad)
    out = layer(t, w, params, max_dw_norm=0.5)
    torch.where(torch.isfinite(out), out * out, 0.0).sum().backward()
    return out.detach(), w.grad, t.grad


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("seed", [3, 4])
def test_compiled_scan_matches_the_torch_engine(monkeypatch, rule, seed):
    """Same spike times (to rounding: the kernels add the inputs one by one, the torch engine
    in chunks), same never-spiking outputs, same gradients for weights and input times."""
    layer, params, scale = RULES[rule]
    times, weights = _layer_inputs(seed, scale)
    compiled = _run(layer, params, times, weights)
    monkeypatch.setattr(scan, "COMPILED_CPU_SCAN", False)
    reference = _run(layer, params, times, weights)

    assert torch.equal(torch.isinf(compiled[0]), torch.isinf(reference[0]))
    assert 0.3 < torch.isfinite(reference[0]).double().mean() < 0.9
    torch.testing.assert_close(compiled[0], reference[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(compiled[1], reference[1], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(compiled[2], reference[2], rtol=1e-9, atol=1e-12)


def test_compiled_scan_without_input_gradient_gives_the_same_weight_gradient():
    layer, params, scale = RULES["et"]
    times, weights = _layer_inputs(5, scale)
    with_inputs = _run(layer, params, times, weights)
    without = _run(layer, params, times, weights, input_grad=False)
    assert without[2] is None
    assert torch.equal(with_inputs[1], without[1])


@pytest.mark.parametrize("rule", sorted(RULES))
def test_compiled_scan_is_bitwise_identical_in_one_or_several_threads(monkeypatch, rule):
    """Each sample is scanned whole by one thread, and the weight gradient is summed per fixed
    group of samples, then over the groups in order: every output is bitwise the same with
    any number of threads."""
    layer, params, scale = RULES[rule]
    times, weights = _layer_inputs(6, scale)
    monkeypatch.setattr(scan, "PARALLEL_SIZE", 0)
    monkeypatch.setattr(scan, "GRADIENT_GROUPS_SIZE", 0)
    monkeypatch.setattr(scan, "PARALLEL_BLOCKS", 1)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(_run(layer, params, times, weights))
    finally:
        torch.set_num_threads(threads)
    for got in results[1:]:
        for value, expected in zip(got, results[0], strict=True):
            assert torch.equal(value, expected)
