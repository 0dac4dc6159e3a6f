"""The LSNN network as the LSNN code runs it: the fused recurrent layer against its plain
autograd reference, the tutorial's input code, the filtered read-out, the summed rate
regulariser, and the life cycle pieces it needs (validation every N batches, a learning rate
decayed per batch)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from cli_runs import invoke
from test_mnist_data import Tiny, tiny  # noqa: F401

from snnexp.config import ConfigError, load_config
from snnexp.data.encoding import latency_encode, lsnn_crossing_spike_train
from snnexp.functional import lsnn
from snnexp.functional.lsnn import (
    LSNNConstants,
    lsnn_layer,
    lsnn_layer_plain,
    lsnn_layer_readout,
    reduce_spikes,
    window_filter_weights,
)
from snnexp.losses.readout import rate_penalty
from snnexp.modules.lsnn import LSNNNetwork
from snnexp.rules.bptt import build_network
from snnexp.rules.deep_r import (
    DeepR,
    RewiringParams,
    balanced_magnitudes,
    lsnn_initial_synapses,
    lsnn_neuron_signs,
    rewired_weights,
    rewired_weights_and_bias_rows,
)

CONFIGS = Path(__file__).resolve().parent.parent / "experiment_configs"


def small_layer(
    refractory: int = 2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, LSNNConstants]:
    """Random inputs, weights and delays of a 7 -> 12 layer (6 regular, 6 adaptive), float64."""
    g = torch.Generator().manual_seed(seed)
    steps, batch, n_in, n, n_delays = 60, 5, 7, 12, 4
    x = (torch.rand(steps, batch, n_in, generator=g, dtype=torch.float64) < 0.2).double()
    w = (torch.randn(n_in, n, generator=g, dtype=torch.float64) * 0.6).requires_grad_()
    r = torch.randn(n, n, generator=g, dtype=torch.float64) * 0.3
    r = r.fill_diagonal_(0.0).requires_grad_()
    beta = torch.cat([torch.zeros(6), torch.full((6,), 1.8)]).double()
    c = LSNNConstants(math.exp(-1 / 20), math.exp(-1 / 50), 0.01, beta, refractory, 0.3, n_delays)
    delays = torch.randint(n_delays, (n_in, n), generator=g)
    recurrent_delays = torch.randint(n_delays, (n, n), generator=g)
    return x, w, r, delays, recurrent_delays, c


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch_ops"])
@pytest.mark.parametrize("refractory", [0, 2])
def test_fused_layer_equals_the_plain_reference(
    refractory: int, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both fused paths (compiled CPU loops; the torch operations other devices run) against
    the plain autograd reference."""
    monkeypatch.setattr(lsnn, "_compiled", lambda _: compiled)
    x, w, r, d, dr, c = small_layer(refractory)
    fused, trace = lsnn_layer(x, w, r, d, dr, c, record=True)
    plain, plain_trace = lsnn_layer_plain(x, w, r, d, dr, c)
    assert torch.equal(fused, plain)
    assert 0.02 < float(fused.detach().mean()) < 0.5
    assert torch.allclose(trace.membrane, plain_trace.membrane, rtol=0, atol=1e-12)
    assert torch.equal(trace.threshold, plain_trace.threshold)
    weights = torch.randn(fused.shape, generator=torch.Generator().manual_seed(3), dtype=x.dtype)
    fused, _ = lsnn_layer(x, w, r, d, dr, c)
    grads = torch.autograd.grad((fused * weights).sum(), [w, r])
    plain_grads = torch.autograd.grad((plain * weights).sum(), [w, r])
    for grad, reference in zip(grads, plain_grads, strict=True):
        assert float(reference.abs().max()) > 1.0
        assert torch.allclose(grad, reference, rtol=0, atol=1e-10)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch_ops"])
def test_reduced_layer_equals_the_reductions_of_the_plain_spikes(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lsnn_layer_readout (what training runs: the window's sum and the counts only) against
    the same sums of the plain reference's spikes, values and gradients."""
    monkeypatch.setattr(lsnn, "_compiled", lambda _: compiled)
    x, w, r, d, dr, c = small_layer(2)
    window = window_filter_weights(len(x), 7, math.exp(-1 / 20), x.dtype, x.device)
    filtered, counts = lsnn_layer_readout(x, w, r, d, dr, c, window)
    plain, _ = lsnn_layer_plain(x, w, r, d, dr, c)
    plain_filtered, plain_counts = reduce_spikes(plain, window)
    assert torch.equal(filtered, plain_filtered) and torch.equal(counts, plain_counts)
    g = torch.Generator().manual_seed(4)
    a, b = (torch.randn(counts.shape, generator=g, dtype=x.dtype) for _ in range(2))
    grads = torch.autograd.grad((filtered * a).sum() + (counts**2 * b).sum(), [w, r])
    reference = torch.autograd.grad(
        (plain_filtered * a).sum() + (plain_counts**2 * b).sum(), [w, r]
    )
    for grad, expected in zip(grads, reference, strict=True):
        assert float(expected.abs().max()) > 1.0
        assert torch.allclose(grad, expected, rtol=0, atol=1e-10)


def test_fused_layer_without_gradients_gives_the_same_spikes() -> None:
    x, w, r, d, dr, c = small_layer()
    with_graph, _ = lsnn_layer(x, w, r, d, dr, c)
    with torch.no_grad():
        without, trace = lsnn_layer(x, w, r, d, dr, c)
    assert trace is None
    assert torch.equal(with_graph, without)


def test_spikes_use_the_previous_membrane_and_reset_by_the_adaptive_threshold() -> None:
    """One adaptive neuron driven by a constant input: check the first steps by hand."""
    c = LSNNConstants(0.5, 0.9, 1.0, torch.tensor([2.0], dtype=torch.float64), 0, 0.3, 1)
    x = torch.ones(6, 1, 1, dtype=torch.float64)
    w = torch.full((1, 1), 6.0, dtype=torch.float64)
    r = torch.zeros(1, 1, dtype=torch.float64)
    zeros = torch.zeros(1, 1, dtype=torch.int64)
    z, trace = lsnn_layer(x, w, r, zeros, zeros, c, record=True)
    v, a, b, spike = 0.0, 1.0, 0.0, 0.0
    expected_v, expected_z = [], []
    for _ in range(6):
        b = 0.9 * b + 0.1 * spike
        a = 1.0 + 2.0 * b
        new_spike = float(v > a)
        v = 0.5 * v + 0.5 * 6.0 - a * spike
        spike = new_spike
        expected_v.append(v)
        expected_z.append(spike)
    assert z.flatten().tolist() == expected_z
    assert expected_z[:3] == [0.0, 1.0, 1.0]  # step 2 still sees v_1, before step 2's reset
    assert torch.allclose(trace.membrane.flatten(), torch.tensor(expected_v, dtype=torch.float64))


def tutorial_crossings(image: np.ndarray, levels: int, cue_steps: int) -> np.ndarray:
    """The LSNN tutorial's get_data_dict for one image (find_onset_offset per level), as its
    code reads: the oracle of the lsnn_crossing encoder."""
    columns = []
    for level in np.linspace(0, 1, levels):
        if level == 1:
            columns.append((image == level).astype(np.float64))
            continue
        lower, higher = image < level, image >= level
        onset, offset = np.zeros_like(image), np.zeros_like(image)
        onset[np.where(lower[:-1] & higher[1:])[0]] = 1
        offset[np.where(higher[:-1] & lower[1:])[0]] = 1
        columns += [onset, offset]
    spikes = np.pad(np.stack(columns, axis=1), ((0, cue_steps), (0, 1)))
    spikes[-cue_steps:, -1] = 1
    return spikes


def test_lsnn_crossing_encoder_matches_the_tutorial_code() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (3, 784))
    raw[:, :100] = 0
    raw[0, 300:310] = 255
    times = latency_encode(1 - raw / 256.0)
    ours = lsnn_crossing_spike_train(times, 0.15, 2.0, 40, 56, 0, 840)
    assert ours.shape == (840, 3, 80)
    for k in range(3):
        image = raw[k].astype(np.float32) * np.float32(1.0 / 255.0)
        assert np.array_equal(ours[:, k].numpy(), tutorial_crossings(image, 40, 56))
    assert ours[:, 0, 78].sum() == (raw[0] == 255).sum() >= 10
    chunks = [
        lsnn_crossing_spike_train(times, 0.15, 2.0, 40, 56, s, 100) for s in range(0, 900, 100)
    ]
    assert torch.equal(torch.cat(chunks)[:840], ours)


def test_window_filter_weights_average_the_filtered_spikes() -> None:
    g = torch.Generator().manual_seed(1)
    z = (torch.rand(50, 3, 4, generator=g, dtype=torch.float64) < 0.3).double()
    decay = math.exp(-1 / 20)
    psp, filtered = torch.zeros(3, 4, dtype=torch.float64), []
    for step in z:
        psp = decay * psp + (1 - decay) * step
        filtered.append(psp)
    expected = torch.stack(filtered)[-7:].mean(0)
    c = window_filter_weights(50, 7, decay, torch.float64, torch.device("cpu"))
    assert torch.allclose(torch.einsum("t,tbn->bn", c, z), expected, rtol=0, atol=1e-14)


def test_rate_penalty_sums_or_averages_over_neurons() -> None:
    counts = [torch.tensor([[2.0, 0.0, 4.0], [2.0, 2.0, 0.0]])]
    squares = (torch.tensor([2.0, 1.0, 2.0]) / 10 - 0.1) ** 2
    assert torch.isclose(rate_penalty(counts, 10, 0.1, "sum"), squares.sum())
    assert torch.isclose(rate_penalty(counts, 10, 0.1), squares.mean())


def test_shipped_lsnn_config_is_the_tutorial_network() -> None:
    cfg = load_config(CONFIGS / "seq_mnist_lsnn.yaml")
    model = build_network(cfg, torch.Generator().manual_seed(0))
    assert isinstance(model, LSNNNetwork)
    layer = model.recurrent
    assert layer.weight.shape == (80, 220) and layer.recurrent_weight.shape == (220, 220)
    assert int((layer.beta > 0).sum()) == 100 and float(layer.beta.max()) == pytest.approx(1.8)
    assert int(layer.recurrent_delays.max()) == 9 and int(layer.delays.min()) == 0
    assert torch.all(torch.diagonal(layer.recurrent_weight) == 0)
    assert float(layer.weight.detach().std()) == pytest.approx(1 / math.sqrt(80), rel=0.05)
    assert (layer.alpha, layer.threshold, layer.refractory_steps) == (
        pytest.approx(math.exp(-1 / 20)),
        0.01,
        5,
    )
    assert model.steps == 840 and model.readout_steps == 28
    assert model.output.weight.shape == (220, 10)
    assert float(model.output.weight.detach().abs().max()) <= math.sqrt(6 / 230)
    scores, hidden = model(torch.full((2, 784), 1.0))
    assert scores.shape == (2, 10) and hidden[0].shape == (2, 220)
    recorded, counts, traces = model.simulate(torch.full((2, 784), 1.0), record=True)
    assert torch.equal(recorded, scores) and torch.equal(counts[0], hidden[0])
    assert traces["spikes_0"][0].shape == (840, 2, 220)


def test_shipped_deep_r_config_is_the_tutorial_default() -> None:
    """seq_mnist_lsnn_deep_r.yaml: the network of seq_mnist_lsnn.yaml with one 12 % budget
    over the input, recurrent and output synapses, Dale's law and the initial synapses as the
    LSNN code draws them, l1 1e-2, no noise."""
    base = load_config(CONFIGS / "seq_mnist_lsnn.yaml")
    cfg = load_config(CONFIGS / "seq_mnist_lsnn_deep_r.yaml")
    assert (cfg.model, cfg.dataset, cfg.training.batch_size) == (
        base.model,
        base.dataset,
        base.training.batch_size,
    )
    assert (cfg.learning.loss, cfg.learning.optimizer, cfg.learning.lr_scheduler) == (
        base.learning.loss,
        base.learning.optimizer,
        base.learning.lr_scheduler,
    )
    rewiring = cfg.learning.rewiring
    assert (rewiring.connectivity, rewiring.l1, rewiring.temperature) == (0.12, 0.01, 0.0)
    assert (rewiring.signs, rewiring.excitatory_fraction, rewiring.scope, rewiring.init) == (
        "lsnn",
        0.75,
        "global",
        "lsnn",
    )
    model = build_network(cfg, torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters())
    weights, _ = zip(*rewired_weights_and_bias_rows(model), strict=True)
    assert [w.shape for w in weights] == [(80, 220), (220, 220), (220, 10)]
    deep_r = DeepR(
        list(weights),
        optimizer,
        RewiringParams(**vars(rewiring)),
        torch.Generator().manual_seed(1),
        populations=model.presynaptic_populations(),
    )
    total = sum(w.numel() for w in weights)
    assert deep_r.total_budget == round(0.12 * total)
    for weight, sign, active in zip(weights, deep_r.signs, deep_r.active, strict=True):
        assert bool((weight[active] * sign[active] > 0).all()) and bool(
            (weight[~active] == 0).all()
        )


def test_lsnn_needs_its_readout() -> None:
    with pytest.raises(ConfigError, match="filtered_linear go together"):
        load_config(CONFIGS / "seq_mnist_lsnn.yaml", overrides=["model.readout=mean_membrane"])


def tiny_lsnn_config() -> dict:
    return {
        "dataset": {
            "name": "sequential_mnist",
            "encoding": {"type": "lsnn_crossing", "thresholds": 4, "cue_steps": 5},
        },
        "model": {
            "neuron": {"type": "lsnn", "tau_mem": 20.0, "threshold": 0.01, "refractory_steps": 2},
            "n_inputs": 8,
            "layer_sizes": [6, 10],
            "adaptive_neurons": [3, 0],
            "recurrent": [True, False],
            "bias_times": [],
            "synaptic_delays": 3,
            "dtype": "float32",
            "dt": 1.0,
            "sim_time": 789.0,
            "readout": "filtered_linear",
            "readout_steps": 5,
        },
        "learning": {
            "rule": "bptt",
            "loss": {
                "type": "cross_entropy",
                "rate_regularization": 0.1,
                "target_rate": 0.01,
                "rate_reduction": "sum",
            },
            "surrogate": {"type": "triangle", "slope": 1.0, "dampening": 0.3},
            "optimizer": {"type": "adam", "lr": 0.01},
            "lr_scheduler": {"type": "StepLR", "step_size": 2, "gamma": 0.5, "interval": "batch"},
        },
        "training": {
            "epochs": 2,
            "batch_size": 2,
            "batch_size_eval": 10,
            "validate_every": 3,
            "max_dw_norm": None,
            "weight_bumping": {"enabled": False},
        },
    }


def test_lsnn_run_validates_every_n_batches_and_decays_per_batch(
    tiny: Tiny,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "lsnn.yaml"
    path.write_text(yaml.safe_dump(tiny_lsnn_config()))
    results = tmp_path / "results"
    result = invoke("train", path, "--results-dir", results, "--data-dir", tiny.root, "--quiet")
    assert result.exit_code == 0, result.output
    (run_dir,) = results.iterdir()
    rows = (run_dir / "validation.csv").read_text().splitlines()
    assert rows[0] == "iteration,epoch,val_loss,val_accuracy,lr,seconds"
    iterations = [int(row.split(",")[0]) for row in rows[1:]]
    assert iterations == [3, 6]
    lrs = [float(row.split(",")[4]) for row in rows[1:]]
    assert lrs == [0.01 * 0.5, 0.01 * 0.5**3]
    assert "iteration 3: validation loss" in (run_dir / "log.txt").read_text()
    with np.load(run_dir / "epoch_2" / "outputs_test.npz") as npz:
        assert npz["trace_input"].shape == (789, 4, 8)
        assert npz["trace_input"][784:, :, -1].sum() == 4 * 5
        assert npz["trace_threshold_0"].shape == (789, 4, 6)
        assert npz["output_scores"].shape == (5, 10)

    result = invoke("continue", run_dir, "2", "3", "--data-dir", tiny.root, "--quiet")
    assert result.exit_code == 0, result.output
    rows = (run_dir / "validation.csv").read_text().splitlines()
    assert [int(row.split(",")[0]) for row in rows[1:]] == [3, 6, 9, 12]

    result = invoke("eval", run_dir, "--only", "validation_by_iteration")
    assert result.exit_code == 0, result.output
    assert (run_dir / "epoch_3" / "figures" / "validation_by_iteration.png").is_file()
    (run_dir / "validation.csv").write_text("iteration,epoch\n3,")
    result = invoke("eval", run_dir, "--only", "training_curves")
    assert result.exit_code == 0, result.output
    assert "validation.csv is damaged" in result.output


def test_nir_export_refuses_an_lsnn_network_with_the_reason() -> None:
    pytest.importorskip("nir", reason="the nir extra is not installed (pip install '.[interop]')")
    from snnexp.nir.export import NirExportError, export_network

    cfg = load_config(CONFIGS / "seq_mnist_lsnn.yaml")
    model = build_network(cfg, torch.Generator().manual_seed(0))
    with pytest.raises(NirExportError, match="LSNN network .* has no NIR counterpart"):
        export_network(model, cfg.model.dt)


def test_compiled_gradients_do_not_depend_on_the_number_of_threads() -> None:
    x, w, r, d, dr, c = small_layer(2)
    w32, r32 = (p.detach().float().requires_grad_() for p in (w, r))
    window = window_filter_weights(len(x), 7, 0.9, torch.float32, x.device)
    results = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            filtered, counts = lsnn_layer_readout(x.float(), w32, r32, d, dr, c, window)
            results.append(torch.autograd.grad((filtered - counts).square().sum(), [w32, r32]))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


def test_balanced_magnitudes_follow_the_lsnn_recipe() -> None:
    """Every column of the signed square matrix sums to 0, its spectral radius is 1, and wider
    matrices draw their columns from it."""
    g = torch.Generator().manual_seed(0)
    signs = torch.where(torch.rand(40, generator=g) < 0.75, 1.0, -1.0)
    state = g.get_state()
    theta = balanced_magnitudes(signs, 40, g)
    w = signs.double().unsqueeze(1) * theta
    assert bool((theta > 0).all())
    assert torch.allclose(w.sum(dim=0), torch.zeros(40, dtype=torch.float64), atol=1e-12)
    assert float(torch.linalg.eigvals(w).abs().max()) == pytest.approx(1.0)
    wide = balanced_magnitudes(signs, 100, g.set_state(state))
    assert wide.shape == (40, 100)
    assert all(any(torch.equal(column, c) for c in theta.T) for column in wide.T[:5])
    with pytest.raises(ConfigError, match="needs learning.rewiring.signs: dale"):
        load_config(
            CONFIGS / "seq_mnist_lsnn_deep_r.yaml", overrides=["learning.rewiring.signs=free"]
        )


def test_lsnn_signs_count_like_the_tutorial_and_inputs_alone_are_shuffled() -> None:
    g = torch.Generator().manual_seed(0)
    recurrent = lsnn_neuron_signs(220, 0.75, False, g)
    assert int((recurrent > 0).sum()) == int(0.75 * 220) + 1 == 166
    assert bool((recurrent[:54] < 0).all()) and bool((recurrent[54:] > 0).all())
    inputs = lsnn_neuron_signs(80, 0.75, True, g)
    assert int((inputs > 0).sum()) == 61
    assert not bool((inputs[:19] < 0).all())
    synapses = lsnn_initial_synapses((80, 220), 0.12, g)
    distinct = 80 * 220 * (1 - math.exp(-0.12))  # expected: int(0.12 n) draws, a few coincide
    assert abs(int(synapses.sum()) - distinct) < 40


def test_lsnn_rewiring_shares_each_neurons_sign_and_fills_its_budget() -> None:
    """signs: lsnn gives a recurrent neuron one sign in the recurrent and the read-out matrix;
    init: lsnn starts a little below the global budget, and the first step fills it."""
    cfg = load_config(CONFIGS / "seq_mnist_lsnn_deep_r.yaml")
    generator = torch.Generator().manual_seed(0)
    model = build_network(cfg, generator)
    weights = rewired_weights(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    params = RewiringParams(**vars(cfg.learning.rewiring))
    populations = model.presynaptic_populations()
    deep_r = DeepR(weights, optimizer, params, generator, populations=populations)
    w_in, w_rec, w_out = deep_r.signs
    assert torch.equal(w_rec[:, 0], w_out[:, 0])
    assert int((w_in[:, 0] > 0).sum()) == 61 and int((w_rec[:, 0] > 0).sum()) == 166
    budget = round(0.12 * (80 * 220 + 220 * 220 + 220 * 10))
    assert deep_r.total_budget == budget
    expected = 68200 * (1 - math.exp(-0.12))  # about 470 short of the budget: coinciding draws
    assert abs(deep_r.active_count() - expected) < 60
    for weight in weights:
        weight.grad = torch.randn(weight.shape, generator=generator)
    deep_r.step()
    assert deep_r.active_count() == budget
    with pytest.raises(ValueError, match="only LSNN networks"):
        DeepR(weights, optimizer, params, generator)
    with pytest.raises(ConfigError, match="needs model.neuron.type: lsnn"):
        load_config(CONFIGS / "mnist_bptt_deep_r.yaml", overrides=["learning.rewiring.signs=lsnn"])


def test_an_lsnn_run_continued_equals_one_never_stopped(
    tiny: Tiny,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Two epochs and a continuation to a third give bitwise the weights, losses and
    validation rows of three epochs in one go (validation every 3 batches, the learning rate
    decayed per batch)."""
    runs = []
    for name, epochs in (("stopped", 2), ("straight", 3)):
        config = tiny_lsnn_config()
        config["training"]["epochs"] = epochs
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        results = tmp_path / name
        result = invoke("train", path, "--results-dir", results, "--data-dir", tiny.root, "--quiet")
        assert result.exit_code == 0, result.output
        (run_dir,) = results.iterdir()
        runs.append(run_dir)
    stopped, straight = runs
    result = invoke("continue", stopped, "2", "3", "--data-dir", tiny.root, "--quiet")
    assert result.exit_code == 0, result.output

    def state(run_dir: Path) -> dict:
        return torch.load(run_dir / "epoch_3" / "checkpoint.pt", weights_only=True)["model"]

    resumed, reference = state(stopped), state(straight)
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[key], reference[key]) for key in reference)

    def rows(run_dir: Path, name: str) -> list[list[str]]:
        lines = (run_dir / name).read_text().splitlines()
        return [line.split(",")[:-1] for line in lines]  # all but the seconds column

    assert rows(stopped, "validation.csv") == rows(straight, "validation.csv")
    history = [[row[:5] for row in rows(run, "history.csv")] for run in runs]
    assert history[0] == history[1]
