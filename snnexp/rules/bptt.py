"""BPTT with surrogate gradients: a time-stepped stack of spiking layers (``model.layer_sizes``)
or a graph of blocks (``model.blocks``), with a loss on the label layer's read-out scores."""

from __future__ import annotations

import torch

from snnexp.config import ExperimentConfig, n_steps
from snnexp.config.schema import LSNN_NEURON
from snnexp.data.encoding import SpikeEncoder
from snnexp.dtypes import DTYPES
from snnexp.functional.surrogate import Surrogate
from snnexp.graph.build import build_graph_network, neuron_defaults
from snnexp.graph.network import GraphNetwork
from snnexp.losses.readout import ReadoutLoss
from snnexp.modules.lsnn import FilteredLinearReadout, LSNNNetwork, LSNNRecurrentLayer
from snnexp.modules.neurons import SpikingNeurons
from snnexp.modules.stepped_layer import SpikingLayer
from snnexp.modules.time_stepped import TimeSteppedNetwork


def build_network(
    cfg: ExperimentConfig, generator: torch.Generator | None = None, training: bool = True
) -> TimeSteppedNetwork | GraphNetwork | LSNNNetwork:
    """A :class:`GraphNetwork` where ``model.blocks`` is given, the :class:`LSNNNetwork` for
    ``model.neuron.type: lsnn``, else the stack of
    ``model.layer_sizes`` (the same for training and evaluation), its products in a fixed
    partition with ``training.thread_independent``."""
    if cfg.model.blocks:
        network: TimeSteppedNetwork | GraphNetwork | LSNNNetwork = build_graph_network(
            cfg, n_steps(cfg.model), generator
        )
    elif cfg.model.neuron.type == LSNN_NEURON:
        network = build_lsnn(cfg, generator)
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


def build_lsnn(cfg: ExperimentConfig, generator: torch.Generator | None = None) -> LSNNNetwork:
    """The LSNN network of ``cfg.model`` (:mod:`snnexp.modules.lsnn`)."""
    model, neuron = cfg.model, cfg.model.neuron
    dtype = DTYPES[model.dtype]
    encoder = SpikeEncoder(dt=model.dt, **vars(cfg.dataset.encoding))
    n, n_classes = model.layer_sizes
    recurrent = LSNNRecurrentLayer(
        encoder.n_inputs(model.n_inputs),
        n,
        n_adaptive=model.adaptive_neurons[0] if model.adaptive_neurons else n,
        tau_mem=neuron.tau_mem,
        tau_adapt=neuron.tau_adapt,
        adapt_strength=neuron.adapt_strength,
        threshold=neuron.threshold,
        refractory_steps=neuron.refractory_steps,
        dampening=cfg.learning.surrogate.dampening,
        n_delays=model.synaptic_delays,
        dt=model.dt,
        dtype=dtype,
    )
    readout = FilteredLinearReadout(n, n_classes, model.readout_tau, model.dt, dtype)
    recurrent.reset_parameters(generator)
    readout.reset_parameters(generator)
    steps = n_steps(model)
    return LSNNNetwork(encoder, steps, recurrent, readout, model.readout_steps or steps)


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
        rate_reduction=loss.rate_reduction,
    )
