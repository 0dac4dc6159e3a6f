"""BPTT with surrogate gradients: a time-stepped stack of spiking layers (``model.layer_sizes``)
or a graph of blocks (``model.blocks``), with a loss on the label layer's read-out scores."""

from __future__ import annotations

import torch

from snnexp.config import ExperimentConfig, n_steps
from snnexp.data.encoding import SpikeEncoder
from snnexp.dtypes import DTYPES
from snnexp.functional.surrogate import Surrogate
from snnexp.graph.build import build_graph_network, neuron_defaults
from snnexp.graph.network import GraphNetwork
from snnexp.losses.readout import ReadoutLoss
from snnexp.modules.neurons import SpikingNeurons
from snnexp.modules.stepped_layer import SpikingLayer
from snnexp.modules.time_stepped import TimeSteppedNetwork


def build_network(
    cfg: ExperimentConfig, generator: torch.Generator | None = None, training: bool = True
) -> TimeSteppedNetwork | GraphNetwork:
    """A :class:`GraphNetwork` where ``model.blocks`` is given, else the stack of
    ``model.layer_sizes`` (the same for training and evaluation), its products in a fixed
    partition with ``training.thread_independent``."""
    if cfg.model.blocks:
        network: TimeSteppedNetwork | GraphNetwork = build_graph_network(
            cfg, n_steps(cfg.model), generator
        )
    else:
        network = build_stack(cfg, generator)
    if cfg.training.thread_independent:
        network.use_fixed_partition()
    return network


def build_stack(
    cfg: ExperimentConfig, generator: torch.Generator | None = None
) -> TimeSteppedNetwork:
    """The BPTT network of ``cfg.model``: spiking layers (recurrent and delayed where asked),
    the label layer spiking or a membrane integrator, fed by the configured spike encoder."""
    model, neuron, encoding = cfg.model, cfg.model.neuron, cfg.dataset.encoding
    dtype = DTYPES[model.dtype]
    surrogate = Surrogate(**vars(cfg.learning.surrogate))
    encoder = SpikeEncoder(dt=model.dt, **vars(encoding))
    sizes = [encoder.n_inputs(model.n_inputs), *model.layer_sizes]
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        neurons = SpikingNeurons(
            n_out,
            **neuron_defaults(neuron),
            dt=model.dt,
            n_adaptive=model.adaptive_neurons[k] if model.adaptive_neurons else None,
            surrogate=surrogate,
            dtype=dtype,
        )
        is_label_layer = k == len(model.layer_sizes) - 1
        layer = SpikingLayer(
            n_in,
            neurons,
            recurrent=model.recurrent[k],
            delay=model.delays[k],
            spiking=not (is_label_layer and model.output == "membrane"),
            bias_times=model.bias_times[k],
        )
        layer.reset_parameters(
            model.weight_init, model.weight_mean[k], model.weight_std[k], generator=generator
        )
        layers.append(layer)
    return TimeSteppedNetwork(
        layers,
        encoder,
        steps=n_steps(model),
        readout=model.readout,
        readout_steps=model.readout_steps,
        xi=cfg.learning.loss.xi,
    )


def build_loss(cfg: ExperimentConfig) -> ReadoutLoss:
    """The configured loss on read-out scores (cross_entropy or mse_count)."""
    loss = cfg.learning.loss
    steps = n_steps(cfg.model)
    return ReadoutLoss(
        type=loss.type,
        window_steps=cfg.model.readout_steps or steps,
        steps=steps,
        count_correct=loss.count_correct,
        count_wrong=loss.count_wrong,
        rate_regularization=loss.rate_regularization,
        target_rate=loss.target_rate,
    )
