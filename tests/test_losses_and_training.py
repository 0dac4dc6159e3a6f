"""Losses, read-outs, weight bumping (and whether it skips the optimizer step) and input noise."""

from __future__ import annotations

import math

import pytest
import torch

from snnexp.config import config_from_dict
from snnexp.losses.spike_time import (
    MISSING_SPIKE_LOSS,
    SpikeTimeLoss,
    predict_closest,
    predict_earliest,
)
from snnexp.modules.first_spike import FirstSpikeLayer, FirstSpikeNetwork
from snnexp.rules.weight_bumping import bump_weights, layer_missing_spikes
from snnexp.run.trainer import Trainer, add_input_noise

INF = math.inf


def test_ttfs_loss_matches_the_formula():
    times = torch.tensor([[1.0, 1.5, INF], [2.0, 1.2, 1.1]], dtype=torch.float64)
    labels = torch.tensor([0, 2])
    loss = SpikeTimeLoss("ttfs", tau_syn=1.0, xi=0.2, alpha=0.005, beta=1.0)
    expected = []
    for row, label in zip(times.tolist(), labels.tolist(), strict=True):
        softmax = math.exp(-row[label] / 0.2) / sum(math.exp(-t / 0.2) for t in row)
        expected.append(-math.log(softmax) + 0.005 * math.exp(row[label]))
    torch.testing.assert_close(
        loss.per_sample(times, labels), torch.tensor(expected, dtype=torch.float64)
    )
    assert loss(times, labels).item() == pytest.approx(sum(expected) / 2)


def test_missing_true_spike_costs_100_and_passes_no_gradient():
    times = torch.tensor(
        [[INF, 1.0, 2.0], [1.0, 2.0, 3.0]], dtype=torch.float64, requires_grad=True
    )
    labels = torch.tensor([0, 0])
    loss = SpikeTimeLoss("ttfs")
    per_sample = loss.per_sample(times, labels)
    assert per_sample[0].item() == MISSING_SPIKE_LOSS
    per_sample.sum().backward()
    assert torch.all(times.grad[0] == 0)
    assert torch.all(torch.isfinite(times.grad))
    assert times.grad[1, 0] != 0


def test_mse_loss_and_closest_readout():
    times = torch.tensor([[1.0, 2.0, 2.5], [1.9, 1.1, 2.0], [1.0, INF, 2.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0])
    loss = SpikeTimeLoss("mse", tau_syn=1.0, t_correct=1.0, t_wrong=2.0)
    per_sample = loss.per_sample(times, labels)
    assert per_sample[0].item() == pytest.approx(0.5 * 0.25)
    assert per_sample[1].item() == pytest.approx(0.5 * (0.01 + 0.01))
    assert per_sample[2].item() == MISSING_SPIKE_LOSS
    assert loss.predict(times).tolist() == [0, 1, 0]


def test_readouts_never_count_a_missing_spike():
    times = torch.tensor([[INF, INF, INF], [0.5, INF, 0.2], [INF, 3.0, 4.0]])
    assert predict_earliest(times).tolist() == [-1, 2, 1]
    assert predict_closest(times, t_correct=0.0).tolist() == [-1, 2, 1]
    assert predict_closest(torch.tensor([[INF, 5.0]]), t_correct=100.0).tolist() == [1]


def test_layer_missing_spikes_finds_the_first_layer_over_its_limit():
    hidden = torch.tensor([[1.0, INF, INF, 1.0], [1.0, 1.0, INF, 1.0]])
    labels = torch.tensor([[1.0, INF], [1.0, 1.0]])
    assert layer_missing_spikes([hidden, labels], [0.5, 0.0]) is not None
    layer, silent = layer_missing_spikes([hidden, labels], [0.5, 0.0])
    assert layer == 1 and silent.tolist() == [False, True]
    layer, silent = layer_missing_spikes([hidden, labels], [0.3, 0.0])
    assert layer == 0 and silent.tolist() == [False, True, True, False]
    assert layer_missing_spikes([hidden, labels], [0.5, 0.5]) is None


def test_bump_raises_only_the_silent_neurons_incoming_weights():
    net = FirstSpikeNetwork([FirstSpikeLayer(3, 4, bias_times=[0.9]), FirstSpikeLayer(4, 2)])
    before = net.layers[0].weight.detach().clone()
    silent = torch.tensor([False, True, False, True])
    bump_weights(net, 0, silent, 0.25, targeted=True)
    delta = net.layers[0].weight.detach() - before
    assert torch.all(delta[:, [1, 3]] == 0.25) and torch.all(delta[:, [0, 2]] == 0)
    bump_weights(net, 0, silent, 0.25, targeted=False)
    assert torch.all(net.layers[0].weight.detach() - before >= 0.25)


def test_bumping_under_rewiring_counts_and_raises_only_drivable_synapses():
    hidden = torch.tensor([[1.0, INF, INF, 1.0], [1.0, 1.0, INF, 1.0]])
    undrivable = torch.tensor([True, True, False, True])
    assert layer_missing_spikes([hidden], [0.3], [undrivable]) is None
    layer, silent = layer_missing_spikes([hidden], [0.1], [undrivable])
    assert layer == 0 and silent.tolist() == [False, True, False, False]
    net = FirstSpikeNetwork([FirstSpikeLayer(3, 4, bias_times=[0.9]), FirstSpikeLayer(4, 2)])
    before = net.layers[0].weight.detach().clone()
    synapses = torch.rand(before.shape, generator=torch.Generator().manual_seed(3)) < 0.5
    bump_weights(net, 0, torch.ones(4, dtype=torch.bool), 0.25, True, synapses)
    delta = net.layers[0].weight.detach() - before
    assert torch.all(delta[synapses] == 0.25) and torch.all(delta[~synapses] == 0)


@pytest.mark.parametrize("skip_step", [True, False])
def test_a_bumping_batch_skips_the_optimizer_step_only_with_skip_step(skip_step: bool):
    config = config_from_dict(
        {
            "dataset": {"train_size": 120, "val_size": 40, "test_size": 40},
            "model": {"layer_sizes": [10, 3], "weight_mean": [0.0, 0.0], "weight_std": [0.1, 0.1]},
            "training": {
                "batch_size": 40,
                "weight_bumping": {"max_missing": [0.0, 0.0], "skip_step": skip_step},
            },
        }
    )
    trainer = Trainer(config, progress=False)
    row = trainer.train_epoch()
    assert row["bumps"] == 3
    steps = [int(state["step"]) for state in trainer.optimizer.state.values()]
    if skip_step:
        assert math.isnan(row["train_loss"]) and steps == []
    else:
        assert math.isfinite(row["train_loss"]) and steps == [3, 3]


def test_input_noise_is_seeded_reflected_at_zero_and_keeps_missing_spikes():
    times = torch.tensor([[0.01, 1.0, INF]] * 2000, dtype=torch.float64)
    noisy = add_input_noise(times, 0.0, 0.3, torch.Generator().manual_seed(1))
    again = add_input_noise(times, 0.0, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(noisy, again)
    assert torch.all(noisy[:, :2] >= 0) and torch.all(torch.isinf(noisy[:, 2]))
    assert noisy[:, 1].std().item() == pytest.approx(0.3, rel=0.1)
    assert noisy[:, 1].mean().item() == pytest.approx(1.0, abs=0.03)
