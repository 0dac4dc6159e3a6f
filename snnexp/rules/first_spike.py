"""The exact first-spike rules (ET, DT): a feed-forward stack of first-spike layers trained on
exact spike times and their exact gradients, with a loss on the label layer's spike times."""

from __future__ import annotations

import torch

from snnexp.config import ExperimentConfig
from snnexp.dtypes import DTYPES
from snnexp.errors import SnnexpError
from snnexp.functional.neuron import NeuronParams
from snnexp.losses.spike_time import SpikeTimeLoss
from snnexp.modules.first_spike import FirstSpikeLayer, FirstSpikeNetwork


def neuron_params(cfg: ExperimentConfig) -> NeuronParams:
    """The config's neuron section as :class:`NeuronParams`."""
    neuron = cfg.model.neuron
    return NeuronParams(
        tau_syn=neuron.tau_syn,
        tau_mem=neuron.tau_mem,
        threshold=neuron.threshold,
        leak=neuron.leak,
        g_leak=neuron.g_leak,
    )


def build_network(
    cfg: ExperimentConfig, generator: torch.Generator | None = None, training: bool = True
) -> FirstSpikeNetwork:
    """First-spike layers with weights from N(mean_k, std_k^2). ``training=False`` builds it for
    evaluation only, where ``model.simulator: stepped`` is allowed (see
    :class:`~snnexp.modules.first_spike.SteppedNetwork`)."""
    if training and cfg.model.simulator != "exact":
        raise SnnexpError(
            f"model.simulator {cfg.model.simulator!r} cannot train: training uses the exact "
            "first-spike times and their exact gradients. Set model.simulator: exact (legacy "
            "configs: use_forward_integrator: false) to train, then evaluate with the stepped "
            "simulator: snnexp inference RUN --simulator stepped --dt 0.01"
        )
    model = cfg.model
    sizes = [model.n_inputs, *model.layer_sizes]
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layer = FirstSpikeLayer(
            n_in,
            n_out,
            params=neuron_params(cfg),
            bias_times=model.bias_times[k],
            rule=cfg.learning.rule,
            max_dw_norm=cfg.training.max_dw_norm,
            dtype=DTYPES[model.dtype],
        )
        layer.reset_parameters(model.weight_mean[k], model.weight_std[k], generator=generator)
        layers.append(layer)
    return FirstSpikeNetwork(layers)


def build_loss(cfg: ExperimentConfig) -> SpikeTimeLoss:
    """The configured loss on label spike times (ttfs or mse)."""
    loss = cfg.learning.loss
    return SpikeTimeLoss(
        type=loss.type,
        tau_syn=cfg.model.neuron.tau_syn,
        xi=loss.xi,
        alpha=loss.alpha,
        beta=loss.beta,
        t_correct=loss.t_correct,
        t_wrong=loss.t_wrong,
    )
