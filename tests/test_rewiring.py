"""DEEP R invariants over many random steps, and rewired training through the life cycle."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from deep_r_checks import assert_step_invariants

from snnexp.cli import main
from snnexp.config import ConfigError, config_from_dict
from snnexp.modules.first_spike import FirstSpikeLayer, FirstSpikeNetwork
from snnexp.rules.deep_r import (
    REGROWN_THETA,
    DeepR,
    RewiringParams,
    rewired_weights,
    rewired_weights_and_bias_rows,
)


def make_weights(seed: int = 0) -> list[torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(seed)
    shapes = [(30, 20), (20, 20), (20, 5)]
    return [
        torch.nn.Parameter(torch.randn(shape, generator=generator, dtype=torch.float64))
        for shape in shapes
    ]


def random_step(weights, deep_r: DeepR, generator: torch.Generator) -> int:
    for weight in weights:
        weight.grad = torch.randn(weight.shape, generator=generator, dtype=weight.dtype)
    return deep_r.step()


@pytest.mark.parametrize("scope", ["per_layer", "global"])
@pytest.mark.parametrize("signs", ["free", "dale"])
def test_invariants_hold_over_many_random_steps(scope, signs):
    weights = make_weights()
    optimizer = torch.optim.Adam(weights, lr=0.05)
    params = RewiringParams(0.2, l1=0.01, temperature=0.01, signs=signs, scope=scope)
    deep_r = DeepR(weights, optimizer, params, torch.Generator().manual_seed(1))
    signs_at_init = [s.clone() for s in deep_r.signs]
    budgets = deep_r.budgets()
    total = sum(budgets)
    generator = torch.Generator().manual_seed(2)
    rewired = 0
    for _ in range(300):
        before = [mask.clone() for mask in deep_r.active]
        count = random_step(weights, deep_r, generator)
        rewired += count
        deactivated = sum(int((b & ~a).sum()) for b, a in zip(before, deep_r.active, strict=True))
        reactivated = sum(int((a & ~b).sum()) for b, a in zip(before, deep_r.active, strict=True))
        assert reactivated == deactivated <= count
        assert deep_r.active_count() == total
        if scope == "per_layer":
            assert [int(mask.sum()) for mask in deep_r.active] == budgets
        assert_step_invariants(weights, deep_r, signs_at_init)
    assert rewired > 0
    if signs == "dale":
        for sign in deep_r.signs:
            assert torch.all(sign == sign[:, :1])


@pytest.mark.parametrize("scope", ["per_layer", "global"])
def test_dense_bias_synapses_stay_active_outside_the_budget(scope):
    network = FirstSpikeNetwork(
        [FirstSpikeLayer(6, 10, bias_times=[0.9, 1.1]), FirstSpikeLayer(10, 3, bias_times=[0.9])]
    )
    generator = torch.Generator().manual_seed(0)
    for layer in network.layers:
        layer.weight.data = torch.randn(layer.weight.shape, generator=generator)
    found = rewired_weights_and_bias_rows(network)
    assert [rows for _, rows in found] == [2, 1]
    assert [w for w, _ in found] == rewired_weights(network)
    weights = [w for w, _ in found]
    bias_at_init = [w.detach()[-rows:].clone() for w, rows in found]
    params = RewiringParams(0.3, l1=0.05, temperature=0.05, scope=scope, bias_synapses="dense")
    deep_r = DeepR(weights, torch.optim.SGD(weights, lr=0.1), params, generator, [2, 1])
    assert deep_r.budgets() == [round(0.3 * 6 * 10), round(0.3 * 10 * 3)]
    assert deep_r.active_count() == sum(deep_r.budgets()) + 2 * 10 + 3
    for (weight, rows), bias in zip(found, bias_at_init, strict=True):
        assert torch.equal(weight.detach()[-rows:], bias)
    flipped = False
    steps = torch.Generator().manual_seed(3)
    for _ in range(200):
        random_step(weights, deep_r, steps)
        assert deep_r.active_count() == sum(deep_r.budgets()) + 2 * 10 + 3
        for (weight, rows), active, sign in zip(found, deep_r.active, deep_r.signs, strict=True):
            assert active[-rows:].all()
            flipped |= bool((torch.sign(weight.detach()[-rows:]) != sign[-rows:]).any())
            body = active[:-rows]
            assert torch.all(sign[:-rows][body] * weight.detach()[:-rows][body] > 0)
    assert flipped


def test_regrown_synapses_start_small():
    weights = make_weights()
    optimizer = torch.optim.SGD(weights, lr=1.0)
    deep_r = DeepR(weights, optimizer, RewiringParams(0.5), torch.Generator().manual_seed(3))
    before = [mask.clone() for mask in deep_r.active]
    for weight, sign in zip(weights, deep_r.signs, strict=True):
        weight.grad = sign * 100.0
    assert deep_r.step() > 0
    for weight, old, new in zip(weights, before, deep_r.active, strict=True):
        regrown = new & ~old
        assert torch.allclose(
            weight[regrown].abs(), torch.full_like(weight[regrown], REGROWN_THETA)
        )


def test_without_noise_and_deactivation_it_is_the_plain_optimizer_step():
    weights = make_weights()
    optimizer = torch.optim.Adam(weights, lr=1e-3)
    deep_r = DeepR(weights, optimizer, RewiringParams(0.3), torch.Generator().manual_seed(4))
    plain = [torch.nn.Parameter(w.detach().clone()) for w in weights]
    plain_optimizer = torch.optim.Adam(plain, lr=1e-3)
    generator = torch.Generator().manual_seed(5)
    for _ in range(5):
        grads = [torch.randn(w.shape, generator=generator, dtype=w.dtype) for w in weights]
        for weight, twin, grad, active in zip(weights, plain, grads, deep_r.active, strict=True):
            weight.grad = grad.clone()
            twin.grad = grad * active
        assert deep_r.step() == 0
        plain_optimizer.step()
        for weight, twin in zip(weights, plain, strict=True):
            assert torch.equal(weight, twin)


def test_l1_shrinks_theta_directly_not_through_the_optimizer():
    weights = make_weights()
    optimizer = torch.optim.Adam(weights, lr=0.05)
    deep_r = DeepR(weights, optimizer, RewiringParams(0.5, l1=0.01), torch.Generator())
    before = [w.detach().clone() for w in weights]
    for weight in weights:
        weight.grad = torch.zeros_like(weight)
    deep_r.step()
    for weight, old, sign, active in zip(weights, before, deep_r.signs, deep_r.active, strict=True):
        kept = active & (sign * old > 0.05 * 0.01)
        assert torch.allclose(
            sign[kept] * (old[kept] - weight[kept]), torch.full_like(old[kept], 0.05 * 0.01)
        )


def test_state_dict_round_trip_resumes_exactly():
    weights = make_weights()
    optimizer = torch.optim.Adam(weights, lr=0.05)
    params = RewiringParams(0.2, l1=0.01, temperature=0.01)
    deep_r = DeepR(weights, optimizer, params, torch.Generator().manual_seed(6))
    grads = torch.Generator().manual_seed(7)
    for _ in range(10):
        random_step(weights, deep_r, grads)
    saved = (
        copy.deepcopy(deep_r.state_dict()),
        [w.detach().clone() for w in weights],
        copy.deepcopy(optimizer.state_dict()),
        deep_r.generator.get_state(),
        grads.get_state(),
    )
    for _ in range(10):
        random_step(weights, deep_r, grads)
    expected = [w.detach().clone() for w in weights]
    state, values, opt_state, rng, grad_rng = saved
    fresh = [torch.nn.Parameter(v.clone()) for v in values]
    fresh_optimizer = torch.optim.Adam(fresh, lr=0.05)
    fresh_optimizer.load_state_dict(opt_state)
    resumed = DeepR(fresh, fresh_optimizer, params, torch.Generator().manual_seed(99))
    resumed.load_state_dict(state)
    with torch.no_grad():
        for weight, value in zip(fresh, values, strict=True):
            weight.copy_(value)
    resumed.generator.set_state(rng)
    grads.set_state(grad_rng)
    for _ in range(10):
        random_step(fresh, resumed, grads)
    for weight, want in zip(fresh, expected, strict=True):
        assert torch.equal(weight, want)


def test_deep_r_rule_needs_a_connectivity():
    with pytest.raises(ConfigError, match="needs a connectivity fraction"):
        config_from_dict(
            {
                "learning": {"rule": "deep_r", "loss": {"type": "cross_entropy"}},
                "model": {"bias_times": []},
            }
        )
    with pytest.raises(ConfigError, match=r"learning.rewiring.connectivity\[?.*must be in"):
        config_from_dict({"learning": {"rewiring": {"connectivity": 1.5}}})


def test_rewired_first_spike_training_continues_exactly(tmp_path: Path):
    config = {
        "name": "tiny_rewired",
        "dataset": {"train_size": 300, "val_size": 100, "test_size": 100},
        "model": {"layer_sizes": [20, 3]},
        "learning": {"rewiring": {"connectivity": 0.5, "temperature": 0.1, "l1": 1e-4}},
        "training": {"epochs": 4, "batch_size": 50, "batch_size_eval": 100, "savepoints": [2]},
    }

    def train(epochs: int, folder: str) -> Path:
        config["training"]["epochs"] = epochs
        path = tmp_path / f"{folder}.yaml"
        path.write_text(yaml.safe_dump(config))
        result = CliRunner().invoke(
            main, ["train", str(path), "--results-dir", str(tmp_path / folder), "--quiet"]
        )
        assert result.exit_code == 0, result.output
        return next((tmp_path / folder).iterdir())

    straight = train(4, "straight")
    stopped = train(2, "stopped")
    result = CliRunner().invoke(main, ["continue", str(stopped), "2", "4", "--quiet"])
    assert result.exit_code == 0, result.output
    a = torch.load(straight / "epoch_4" / "checkpoint.pt", weights_only=True)
    b = torch.load(stopped / "epoch_4" / "checkpoint.pt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    budget = round(0.5 * 5 * 20) + round(0.5 * 21 * 3)
    assert a["history"]["connections"] == [budget] * 5
    assert sum(a["history"]["rewirings"]) > 0
    for weight, active in zip(
        (a["model"]["layers.0.weight"], a["model"]["layers.1.weight"]),
        a["rewiring"]["active"],
        strict=True,
    ):
        assert torch.all(weight[~active] == 0)
        assert int(active.sum()) == round(0.5 * active.numel())
    result = CliRunner().invoke(
        main,
        [
            "eval",
            str(straight),
            "--out",
            str(tmp_path / "figures"),
            "--only",
            "sign_maps",
            "--only",
            "connectivity",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("sign_maps", "connectivity"):
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 10_000
