"""Exact DT first-spike layer (tau_mem = 2 tau_syn): first crossing, exact gradients, memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numeric import numeric_gradient

from snnexp.config import config_from_dict
from snnexp.functional.event.dt import DEFAULT_DT_NEURON, dt_spike_times, first_spike_dt
from snnexp.functional.neuron import NeuronParams
from snnexp.modules.first_spike import FIRST_SPIKE_FUNCTIONS, FirstSpikeLayer
from snnexp.run.build import build_network


def _with_bias(times: torch.Tensor, bias_time: float = 0.9) -> torch.Tensor:
    return torch.cat([times, torch.full((len(times), 1), bias_time, dtype=times.dtype)], dim=1)


def _membrane(
    t: np.ndarray, input_times: np.ndarray, weights: np.ndarray, p: NeuronParams
) -> np.ndarray:
    """u(t) of every output on the time grid t, (len(t), n_outputs), from the PSP sum."""
    delay = t[:, None] - input_times[None, :]
    causal = np.isfinite(delay) & (delay > 0)
    delay = np.where(causal, delay, 0.0)
    kernel = np.where(causal, np.exp(-delay / p.tau_mem) - np.exp(-delay / p.tau_syn), 0.0)
    scale = p.tau_syn / (p.g_leak * (p.tau_mem - p.tau_syn))
    return p.leak + scale * kernel @ weights


def test_forward_is_the_first_threshold_crossing():
    """Dense time grid: the membrane stays below threshold before t_out and reaches it at t_out."""
    gen = torch.Generator().manual_seed(3)
    p = NeuronParams(tau_syn=0.7, tau_mem=1.4, threshold=1.2, leak=0.1, g_leak=1.3)
    times = torch.rand(6, 12, generator=gen, dtype=torch.float64) * 2
    times[0, :4] = torch.inf
    weights = torch.randn(12, 9, generator=gen, dtype=torch.float64) * 1.6 + 0.9
    out = dt_spike_times(times, weights, p).numpy()
    grid = np.linspace(0, 16, 32001)
    for b in range(len(times)):
        u = _membrane(grid, times[b].numpy(), weights.numpy(), p)
        for j in range(weights.shape[1]):
            above = np.nonzero(u[:, j] >= p.threshold)[0]
            if len(above) == 0:
                assert np.isinf(out[b, j])
            else:
                assert abs(grid[above[0]] - out[b, j]) <= grid[1] - grid[0] + 1e-12
                u_at = _membrane(np.array([out[b, j]]), times[b].numpy(), weights.numpy(), p)
                assert u_at[0, j] == pytest.approx(p.threshold, abs=1e-9)
    assert np.isinf(out).any() and np.isfinite(out).any()


def test_single_input_closed_form():
    """One input of weight w: the larger root of x^2 - x + c/w = 0, x = e^{-(t - t_1)/tau_m}."""
    w = torch.tensor([[0.5, 3.9, 5.0]], dtype=torch.float64)  # one input, 3 outputs
    times = torch.tensor([[0.3]], dtype=torch.float64)
    out = dt_spike_times(times, w, DEFAULT_DT_NEURON)[0]
    assert torch.isinf(out[0])  # PSP peak w/4 = 0.125 < 1
    assert torch.isinf(out[1])  # 0.975 < 1
    x = (1 + np.sqrt(1 - 4 / 5.0)) / 2
    assert out[2].item() == pytest.approx(0.3 - 2.0 * np.log(x), abs=1e-12)


def _objective(times, weights, coeffs, p):
    out = dt_spike_times(times, weights, p)
    return torch.where(torch.isfinite(out), out * coeffs, 0.0).sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_match_finite_differences(seed):
    gen = torch.Generator().manual_seed(seed)
    p = NeuronParams(tau_syn=1.3, tau_mem=2.6, threshold=0.8, leak=0.0, g_leak=1.0)
    batch, n_in, n_out = 5, 8, 6
    times = 0.15 + torch.rand(batch, n_in, generator=gen, dtype=torch.float64) * 1.85
    times[1, 2] = torch.inf
    times = _with_bias(times, 0.9)
    weights = torch.randn(n_in + 1, n_out, generator=gen, dtype=torch.float64) + 0.7
    weights[:, 0] = -0.5  # an output that never spikes
    coeffs = torch.randn(batch, n_out, generator=gen, dtype=torch.float64)

    times_var = times.clone().requires_grad_(True)
    weights_var = weights.clone().requires_grad_(True)
    out = first_spike_dt(times_var, weights_var, p)
    assert torch.isinf(out[:, 0]).all() and torch.isfinite(out).sum() > batch * 2
    torch.where(torch.isfinite(out), out * coeffs, 0.0).sum().backward()

    num_w = numeric_gradient(lambda w: _objective(times, w, coeffs, p), weights)
    np.testing.assert_allclose(weights_var.grad.numpy(), num_w.numpy(), rtol=1e-5, atol=1e-6)
    num_t = numeric_gradient(lambda t: _objective(t, weights, coeffs, p), times)
    np.testing.assert_allclose(times_var.grad.numpy(), num_t.numpy(), rtol=1e-5, atol=1e-6)
    assert times_var.grad[1, 2].item() == 0.0


def test_max_dw_norm_drops_only_large_per_sample_weight_gradients():
    gen = torch.Generator().manual_seed(7)
    times = _with_bias(0.15 + torch.rand(20, 6, generator=gen, dtype=torch.float64) * 1.85)
    weights = torch.randn(7, 4, generator=gen, dtype=torch.float64) + 1.2

    def grads(max_dw_norm):
        t = times.clone().requires_grad_(True)
        w = weights.clone().requires_grad_(True)
        out = first_spike_dt(t, w, DEFAULT_DT_NEURON, max_dw_norm=max_dw_norm)
        torch.where(torch.isfinite(out), out, 0.0).sum().backward()
        return t.grad, w.grad

    t_free, w_free = grads(None)
    t_clip, w_clip = grads(1e-12)
    assert torch.count_nonzero(w_free) > 0
    assert torch.count_nonzero(w_clip) == 0
    torch.testing.assert_close(t_clip, t_free)
    t_loose, w_loose = grads(1e12)
    torch.testing.assert_close(w_loose, w_free)


def test_memory_is_linear_not_quadratic_in_inputs():
    """batch 4, 4000 inputs, 30 outputs: the (batch, N, N, M) expansion would need 15 GB."""
    gen = torch.Generator().manual_seed(0)
    times = torch.rand(4, 4000, generator=gen, dtype=torch.float64) * 2
    weights = (torch.rand(4000, 30, generator=gen, dtype=torch.float64) * 0.03).requires_grad_(True)
    out = first_spike_dt(times, weights, DEFAULT_DT_NEURON)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(weights.grad).all()


def test_float32_agrees_with_float64():
    gen = torch.Generator().manual_seed(11)
    times = 0.15 + torch.rand(32, 10, generator=gen, dtype=torch.float64) * 1.85
    weights = torch.randn(10, 5, generator=gen, dtype=torch.float64) * 1.2 + 0.8
    t64 = dt_spike_times(times, weights, DEFAULT_DT_NEURON)
    t32 = dt_spike_times(times.float(), weights.float(), DEFAULT_DT_NEURON)
    assert t32.dtype == torch.float32
    both = torch.isfinite(t64) & torch.isfinite(t32)
    assert both.sum() > 0.8 * torch.isfinite(t64).sum()
    np.testing.assert_allclose(t32[both].double().numpy(), t64[both].numpy(), atol=1e-3)


def test_tau_mismatch_is_refused():
    with pytest.raises(ValueError, match="tau_mem = 2 tau_syn"):
        first_spike_dt(torch.zeros(1, 2), torch.zeros(2, 1), NeuronParams())


def test_rule_is_chosen_by_config_only():
    assert FIRST_SPIKE_FUNCTIONS["first_spike_dt"] is first_spike_dt
    cfg = config_from_dict(
        {
            "learning": {"rule": "first_spike_dt"},
            "model": {"neuron": {"tau_syn": 0.5, "tau_mem": 1.0}, "layer_sizes": [10, 3]},
        }
    )
    network = build_network(cfg, torch.Generator().manual_seed(0))
    assert all(layer.rule == "first_spike_dt" for layer in network.layers)
    times = 0.15 + torch.rand(7, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    label_times, (hidden,) = network(times)
    layer = network.layers[0]
    expected = dt_spike_times(_with_bias(times), layer.weight.detach(), layer.params)
    torch.testing.assert_close(hidden.detach(), expected)
    assert label_times.shape == (7, 3)


def test_layer_with_dt_rule_backpropagates():
    layer = FirstSpikeLayer(4, 6, DEFAULT_DT_NEURON, bias_times=[0.9], rule="first_spike_dt")
    layer.reset_parameters(2.0, 0.5, generator=torch.Generator().manual_seed(0))
    times = (0.15 + torch.rand(5, 4, dtype=torch.float64)).requires_grad_(True)
    out = layer(times)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(layer.weight.grad).all() and torch.isfinite(times.grad).all()


def _dense_reference(times: np.ndarray, weights: np.ndarray, p: NeuronParams) -> np.ndarray:
    """The straightforward algorithm: the larger root for every causal-set length of every pair."""
    out = np.full((times.shape[0], weights.shape[1]), np.inf)
    c = p.scaled_threshold
    for b, row in enumerate(times / p.tau_mem):
        order = np.argsort(row)
        x = row[order]
        for j in range(weights.shape[1]):
            w = weights[order, j]
            for k in range(len(x)):
                if not np.isfinite(x[k]):
                    break
                a = np.sum(w[: k + 1] * np.exp(2 * x[: k + 1]))
                bb = np.sum(w[: k + 1] * np.exp(x[: k + 1]))
                disc = bb * bb - 4 * a * c
                if not (a > 0 and disc >= 0):
                    continue
                t = -np.log((bb + np.sqrt(disc)) / (2 * a))
                end = x[k + 1] if k + 1 < len(x) else np.inf
                if x[k] <= t <= end:
                    out[b, j] = p.tau_mem * t
                    break
    return out


def test_scan_over_many_chunks_matches_the_dense_algorithm():
    gen = torch.Generator().manual_seed(5)
    p = NeuronParams(tau_syn=0.8, tau_mem=1.6, threshold=0.9, leak=0.1, g_leak=1.2)
    times = torch.rand(6, 300, generator=gen, dtype=torch.float64) * 3
    times[:, 250:] = torch.inf
    weights = torch.randn(300, 7, generator=gen, dtype=torch.float64) * 0.05 + 0.03
    weights[:, 0] = -0.1
    out = dt_spike_times(times, weights, p).numpy()
    ref = _dense_reference(times.numpy(), weights.numpy(), p)
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))
    finite = np.isfinite(ref)
    assert finite.mean() > 0.4
    np.testing.assert_allclose(out[finite], ref[finite], rtol=0, atol=1e-10)


def test_gradients_across_chunks_and_clipping_match_per_sample_autograd():
    gen = torch.Generator().manual_seed(9)
    times = torch.rand(4, 200, generator=gen, dtype=torch.float64) * 2.5
    weights = torch.randn(200, 5, generator=gen, dtype=torch.float64) * 0.05 + 0.04
    coeffs = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    p = DEFAULT_DT_NEURON

    def per_sample(b):
        w = weights.clone().requires_grad_(True)
        out = first_spike_dt(times[b : b + 1], w, p)
        torch.where(torch.isfinite(out), out * coeffs[b], 0.0).sum().backward()
        return w.grad

    grads = [per_sample(b) for b in range(4)]
    threshold = float(np.median([g.abs().amax(0).max() for g in grads]))
    expected = torch.zeros_like(weights)
    for g in grads:
        expected += torch.where(g.abs().amax(0) > threshold, 0.0, g)

    w = weights.clone().requires_grad_(True)
    t = times.clone().requires_grad_(True)
    out = first_spike_dt(t, w, p, max_dw_norm=threshold)
    assert torch.isfinite(out).float().mean() > 0.5
    torch.where(torch.isfinite(out), out * coeffs, 0.0).sum().backward()
    torch.testing.assert_close(w.grad, expected)

    eps, b, i = 1e-6, 1, int(torch.argmin(times[1]))
    plus, minus = times.clone(), times.clone()
    plus[b, i] += eps
    minus[b, i] -= eps
    numeric = (_objective(plus, weights, coeffs, p) - _objective(minus, weights, coeffs, p)) / (
        2 * eps
    )
    assert t.grad[b, i].item() == pytest.approx(numeric.item(), rel=1e-5, abs=1e-8)
