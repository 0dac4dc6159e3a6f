"""Exact ET first-spike layer: conformance with the published network, exact gradients, memory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numeric import numeric_gradient

from snnexp.functional.event import scan
from snnexp.functional.event.et import et_spike_times, first_spike_et
from snnexp.functional.lambertw import lambertw0
from snnexp.functional.neuron import NeuronParams


def test_lambertw_solves_defining_equation():
    z = torch.cat(
        [
            torch.linspace(-1 / math.e, 0.0, 20001, dtype=torch.float64),
            torch.logspace(-8, 12, 2001, dtype=torch.float64),
        ]
    )
    w = lambertw0(z)
    assert torch.all(w >= -1.0)
    residual = (w * torch.exp(w) - z).abs() / torch.clamp(z.abs(), min=1e-3)
    assert residual.max().item() < 1e-13
    assert torch.isnan(lambertw0(torch.tensor([-0.5], dtype=torch.float64))).all()
    w32 = lambertw0(torch.linspace(-1 / math.e, 3.0, 1001, dtype=torch.float32))
    assert w32.dtype == torch.float32
    w64 = lambertw0(torch.linspace(-1 / math.e, 3.0, 1001, dtype=torch.float64))
    np.testing.assert_allclose(w32.numpy(), w64.numpy(), atol=2e-3)


def _with_bias(times: torch.Tensor, bias_time: float = 0.9) -> torch.Tensor:
    return torch.cat([times, torch.full((len(times), 1), bias_time, dtype=times.dtype)], dim=1)


def test_reference_yin_yang_network_is_reproduced(reference_dir):
    ref = reference_dir("yin_yang_et_300epochs")
    inputs = torch.tensor(np.load(ref / "test_input_times.npy"))
    w_hidden = torch.tensor(np.load(ref / "weights_layer0.npy"))
    w_out = torch.tensor(np.load(ref / "weights_layer1.npy"))
    hidden_ref = np.load(ref / "test_hidden_times.npy")
    output_ref = np.load(ref / "test_output_times.npy")
    labels = np.load(ref / "test_labels.npy")

    hidden = et_spike_times(_with_bias(inputs), w_hidden, NeuronParams())
    np.testing.assert_array_equal(np.isinf(hidden.numpy()), np.isinf(hidden_ref))
    finite = np.isfinite(hidden_ref)
    np.testing.assert_allclose(hidden.numpy()[finite], hidden_ref[finite], rtol=0, atol=1e-9)

    output = et_spike_times(_with_bias(hidden), w_out, NeuronParams()).numpy()
    np.testing.assert_array_equal(np.isinf(output), np.isinf(output_ref))
    finite = np.isfinite(output_ref)
    np.testing.assert_allclose(output[finite], output_ref[finite], rtol=0, atol=1e-4)
    predicted = np.where(np.isfinite(output.min(1)), output.argmin(1), -1)
    assert (predicted == labels).mean() == pytest.approx(0.960, abs=1e-9)


def _membrane(
    t: float, input_times: np.ndarray, weights: np.ndarray, p: NeuronParams
) -> np.ndarray:
    delay = (t - input_times[:, None]) / p.tau_syn
    causal = np.isfinite(delay) & (delay > 0)
    psp = np.where(causal, np.where(causal, delay, 0) * np.exp(-np.where(causal, delay, 0)), 0.0)
    return p.leak + (psp * weights).sum(0) / p.g_leak


def test_forward_is_the_first_threshold_crossing():
    """Dense time grid: the membrane stays below threshold before t_out and reaches it at t_out."""
    gen = torch.Generator().manual_seed(3)
    p = NeuronParams(tau_syn=0.7, tau_mem=0.7, threshold=1.2, leak=0.1, g_leak=1.3)
    times = torch.rand(6, 12, generator=gen, dtype=torch.float64) * 2
    times[0, :4] = torch.inf
    weights = torch.randn(12, 9, generator=gen, dtype=torch.float64) * 1.2 + 0.6
    out = et_spike_times(times, weights, p).numpy()
    grid = np.linspace(0, 12, 24001)
    for b in range(len(times)):
        u = np.stack([_membrane(t, times[b].numpy(), weights.numpy(), p) for t in grid])
        for j in range(weights.shape[1]):
            above = np.nonzero(u[:, j] >= p.threshold)[0]
            if len(above) == 0:
                assert np.isinf(out[b, j])
            else:
                assert abs(grid[above[0]] - out[b, j]) <= grid[1] - grid[0] + 1e-12
                u_at = _membrane(out[b, j], times[b].numpy(), weights[:, j : j + 1].numpy(), p)
                assert u_at[0] == pytest.approx(p.threshold, abs=1e-9)
    assert np.isinf(out).any() and np.isfinite(out).any()


def _objective(times, weights, coeffs, p):
    out = et_spike_times(times, weights, p)
    return torch.where(torch.isfinite(out), out * coeffs, 0.0).sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_match_finite_differences(seed):
    gen = torch.Generator().manual_seed(seed)
    p = NeuronParams(tau_syn=1.3, tau_mem=1.3, threshold=1.0, leak=0.0, g_leak=1.0)
    batch, n_in, n_out = 5, 8, 6
    times = 0.15 + torch.rand(batch, n_in, generator=gen, dtype=torch.float64) * 1.85
    times[1, 2] = torch.inf
    times = _with_bias(times, 0.9)
    weights = torch.randn(n_in + 1, n_out, generator=gen, dtype=torch.float64) + 0.5
    weights[:, 0] = -0.5  # an output that never spikes
    coeffs = torch.randn(batch, n_out, generator=gen, dtype=torch.float64)

    times_var = times.clone().requires_grad_(True)
    weights_var = weights.clone().requires_grad_(True)
    out = first_spike_et(times_var, weights_var, p)
    assert torch.isinf(out[:, 0]).all() and torch.isfinite(out).any()
    torch.where(torch.isfinite(out), out * coeffs, 0.0).sum().backward()

    num_w = numeric_gradient(lambda w: _objective(times, w, coeffs, p), weights)
    np.testing.assert_allclose(weights_var.grad.numpy(), num_w.numpy(), rtol=1e-5, atol=1e-6)
    num_t = numeric_gradient(lambda t: _objective(t, weights, coeffs, p), times)
    np.testing.assert_allclose(times_var.grad.numpy(), num_t.numpy(), rtol=1e-5, atol=1e-6)
    assert times_var.grad[1, 2].item() == 0.0


def test_max_dw_norm_drops_only_large_per_sample_weight_gradients():
    gen = torch.Generator().manual_seed(7)
    times = _with_bias(0.15 + torch.rand(20, 6, generator=gen, dtype=torch.float64) * 1.85)
    weights = torch.randn(7, 4, generator=gen, dtype=torch.float64) + 0.6

    def grads(max_dw_norm):
        t = times.clone().requires_grad_(True)
        w = weights.clone().requires_grad_(True)
        out = first_spike_et(t, w, NeuronParams(), max_dw_norm=max_dw_norm)
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
    weights = (torch.rand(4000, 30, generator=gen, dtype=torch.float64) * 0.02).requires_grad_(True)
    out = first_spike_et(times, weights, NeuronParams())
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(weights.grad).all()


def test_float32_agrees_with_float64():
    gen = torch.Generator().manual_seed(11)
    times = 0.15 + torch.rand(32, 10, generator=gen, dtype=torch.float64) * 1.85
    weights = torch.randn(10, 5, generator=gen, dtype=torch.float64) * 0.8 + 0.5
    t64 = et_spike_times(times, weights, NeuronParams())
    t32 = et_spike_times(times.float(), weights.float(), NeuronParams())
    assert t32.dtype == torch.float32
    both = torch.isfinite(t64) & torch.isfinite(t32)
    assert both.sum() > 0.8 * torch.isfinite(t64).sum()
    np.testing.assert_allclose(t32[both].double().numpy(), t64[both].numpy(), atol=1e-3)


def test_tau_mismatch_is_refused():
    with pytest.raises(ValueError, match="tau_mem = tau_syn"):
        first_spike_et(torch.zeros(1, 2), torch.zeros(2, 1), NeuronParams(tau_mem=2.0))


def _dense_reference(times: np.ndarray, weights: np.ndarray, p: NeuronParams) -> np.ndarray:
    """The straightforward algorithm: every causal-set length for every pair (small sizes)."""
    from scipy.special import lambertw

    out = np.full((times.shape[0], weights.shape[1]), np.inf)
    c = p.scaled_threshold
    for b, row in enumerate(times / p.tau_syn):
        order = np.argsort(row)
        x = row[order]
        for j in range(weights.shape[1]):
            w = weights[order, j]
            for k in range(len(x)):
                if not np.isfinite(x[k]):
                    break
                a = np.sum(w[: k + 1] * np.exp(x[: k + 1]))
                bb = np.sum(w[: k + 1] * x[: k + 1] * np.exp(x[: k + 1]))
                z = -(c / a) * np.exp(bb / a) if a > 0 else np.nan
                if not (a > 0 and z >= -1 / np.e):
                    continue
                t = bb / a - lambertw(z).real
                end = x[k + 1] if k + 1 < len(x) else np.inf
                if x[k] <= t <= end:
                    out[b, j] = p.tau_syn * t
                    break
    return out


def test_scan_over_many_chunks_matches_the_dense_algorithm():
    pytest.importorskip("scipy")
    gen = torch.Generator().manual_seed(5)
    times = torch.rand(6, 300, generator=gen, dtype=torch.float64) * 3
    times[:, 250:] = torch.inf
    weights = torch.randn(300, 7, generator=gen, dtype=torch.float64) * 0.05 + 0.025
    weights[:, 0] = -0.1
    out = et_spike_times(times, weights, NeuronParams()).numpy()
    ref = _dense_reference(times.numpy(), weights.numpy(), NeuronParams())
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))
    finite = np.isfinite(ref)
    assert finite.mean() > 0.4
    np.testing.assert_allclose(out[finite], ref[finite], rtol=0, atol=1e-10)


def test_gradients_across_chunks_and_clipping_match_per_sample_autograd():
    gen = torch.Generator().manual_seed(9)
    times = torch.rand(4, 200, generator=gen, dtype=torch.float64) * 2.5
    weights = torch.randn(200, 5, generator=gen, dtype=torch.float64) * 0.05 + 0.03
    coeffs = torch.randn(4, 5, generator=gen, dtype=torch.float64)

    def per_sample(b):
        w = weights.clone().requires_grad_(True)
        out = first_spike_et(times[b : b + 1], w, NeuronParams())
        torch.where(torch.isfinite(out), out * coeffs[b], 0.0).sum().backward()
        return w.grad

    grads = [per_sample(b) for b in range(4)]
    threshold = float(np.median([g.abs().amax(0).max() for g in grads]))
    expected = torch.zeros_like(weights)
    for g in grads:
        expected += torch.where(g.abs().amax(0) > threshold, 0.0, g)

    w = weights.clone().requires_grad_(True)
    t = times.clone().requires_grad_(True)
    out = first_spike_et(t, w, NeuronParams(), max_dw_norm=threshold)
    assert torch.isfinite(out).float().mean() > 0.5
    torch.where(torch.isfinite(out), out * coeffs, 0.0).sum().backward()
    torch.testing.assert_close(w.grad, expected)

    eps, b, i = 1e-6, 1, int(torch.argmin(times[1]))
    plus, minus = times.clone(), times.clone()
    plus[b, i] += eps
    minus[b, i] -= eps
    numeric = (
        _objective(plus, weights, coeffs, NeuronParams())
        - _objective(minus, weights, coeffs, NeuronParams())
    ) / (2 * eps)
    assert t.grad[b, i].item() == pytest.approx(numeric.item(), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize(
    ("pair_block", "dense_fraction", "threads"), [(7, 0.0, 1), (21, 1 / 3, 2), (35, 2.0, 3)]
)
def test_scan_blocks_phases_and_threads_give_identical_times_and_gradients(
    monkeypatch, pair_block, dense_fraction, threads
):
    """Torch engine (GPUs): blocks of one, three or five samples, scanned in one to three
    threads, give the results
    of one block of all nine, whether the scan computes every pair of a block to the end
    (dense_fraction 0), goes on pair by pair right after the first chunk (2.0), or switches in
    between (rows with different numbers of spiking inputs; outputs that spike early, late or
    never)."""
    gen = torch.Generator().manual_seed(11)
    times = torch.rand(9, 260, generator=gen, dtype=torch.float64) * 3
    for row in range(9):
        times[row, 100 + 15 * row :] = torch.inf
    means = torch.tensor([-0.1, 0.0, 0.15, 0.3, 0.4, 0.5, 0.6], dtype=torch.float64)
    weights = torch.randn(260, 7, generator=gen, dtype=torch.float64) * 0.06 + means

    def run():
        w = weights.clone().requires_grad_(True)
        t = times.clone().requires_grad_(True)
        out = first_spike_et(t, w, NeuronParams(), max_dw_norm=0.5)
        torch.where(torch.isfinite(out), out * out, 0.0).sum().backward()
        return out.detach(), w.grad, t.grad

    monkeypatch.setattr(scan, "COMPILED_CPU_SCAN", False)
    expected = run()
    monkeypatch.setattr(scan, "PAIR_BLOCK", pair_block)
    monkeypatch.setattr(scan, "DENSE_FRACTION", dense_fraction)
    monkeypatch.setattr(scan, "PARALLEL_SIZE", 0)
    monkeypatch.setattr(scan, "PARALLEL_BLOCKS", 1)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = run()
    finally:
        torch.set_num_threads(torch_threads)
    assert torch.equal(got[0], expected[0])
    assert 0.3 < torch.isfinite(got[0]).double().mean() < 0.9
    torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got[2], expected[2], rtol=1e-12, atol=1e-12)
