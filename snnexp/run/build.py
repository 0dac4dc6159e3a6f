"""Build the pieces of an experiment from a validated config: device, network, loss, optimizer.

Data flows one way: config -> data + model -> train loop -> results -> plots. Every builder here
is deterministic given the config (weights are drawn from a generator seeded from it).
"""

from __future__ import annotations

import torch

from snnexp.config import TIME_STEPPED_RULES, ExperimentConfig, n_steps
from snnexp.data.encoding import SpikeEncoder
from snnexp.dtypes import DTYPES
from snnexp.errors import SnnexpError
from snnexp.functional.event.et import NeuronParams
from snnexp.functional.surrogate import Surrogate
from snnexp.graph.build import build_graph_network
from snnexp.graph.network import GraphNetwork
from snnexp.losses.readout import ReadoutLoss
from snnexp.losses.spike_time import SpikeTimeLoss
from snnexp.modules.first_spike import FIRST_SPIKE_FUNCTIONS, FirstSpikeLayer, FirstSpikeNetwork
from snnexp.modules.neurons import SpikingNeurons
from snnexp.modules.stepped_layer import SpikingLayer
from snnexp.modules.time_stepped import TimeSteppedNetwork
from snnexp.rules.deep_r import DeepR, RewiringParams, rewired_weights_and_bias_rows


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SnnexpError(
            "device 'cuda' was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto"
        )
    return torch.device(name)


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


def is_time_stepped(cfg: ExperimentConfig) -> bool:
    """Whether the config's rule trains a time-stepped network by BPTT."""
    return cfg.learning.rule in TIME_STEPPED_RULES


def build_network(
    cfg: ExperimentConfig, generator: torch.Generator | None = None, training: bool = True
) -> FirstSpikeNetwork | TimeSteppedNetwork | GraphNetwork:
    """The network of ``cfg.model``: first-spike layers (weights from N(mean_k, std_k^2)) for
    the first-spike rules, a :class:`TimeSteppedNetwork` for BPTT, a :class:`GraphNetwork`
    where ``model.blocks`` is given.

    ``training=False`` builds it for evaluation only, where ``model.simulator: stepped`` is
    allowed for first-spike networks (see :mod:`snnexp.modules.first_spike`).
    """
    rule = cfg.learning.rule
    if cfg.model.blocks:
        return build_graph_network(cfg, n_steps(cfg.model), generator)
    if is_time_stepped(cfg):
        return build_time_stepped_network(cfg, generator)
    if rule not in FIRST_SPIKE_FUNCTIONS:
        raise SnnexpError(
            f"learning.rule {rule!r} is not implemented in this version of snnexp; "
            f"available: {', '.join(FIRST_SPIKE_FUNCTIONS)}"
        )
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
            rule=rule,
            max_dw_norm=cfg.training.max_dw_norm,
            dtype=DTYPES[model.dtype],
        )
        layer.reset_parameters(model.weight_mean[k], model.weight_std[k], generator=generator)
        layers.append(layer)
    return FirstSpikeNetwork(layers)


def build_time_stepped_network(
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
            neuron.type,
            dt=model.dt,
            tau_mem=neuron.tau_mem,
            tau_syn=neuron.tau_syn,
            tau_adapt=neuron.tau_adapt,
            adapt_strength=neuron.adapt_strength,
            n_adaptive=model.adaptive_neurons[k] if model.adaptive_neurons else None,
            threshold=neuron.threshold,
            reset=neuron.reset,
            refractory_steps=neuron.refractory_steps,
            resistance=neuron.resistance,
            capacitance=neuron.capacitance,
            learn_tau=neuron.learn_tau,
            per_neuron_tau=neuron.per_neuron_tau,
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


def build_loss(cfg: ExperimentConfig) -> SpikeTimeLoss | ReadoutLoss:
    """The configured loss and read-out."""
    loss = cfg.learning.loss
    if is_time_stepped(cfg):
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
    return SpikeTimeLoss(
        type=loss.type,
        tau_syn=cfg.model.neuron.tau_syn,
        xi=loss.xi,
        alpha=loss.alpha,
        beta=loss.beta,
        t_correct=loss.t_correct,
        t_wrong=loss.t_wrong,
    )


def build_optimizer(cfg: ExperimentConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam or SGD (+ momentum) over the model's parameters."""
    opt = cfg.learning.optimizer
    if opt.type == "adam":
        return torch.optim.Adam(model.parameters(), lr=opt.lr)
    return torch.optim.SGD(model.parameters(), lr=opt.lr, momentum=opt.momentum)


def build_rewiring(
    cfg: ExperimentConfig,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> DeepR | None:
    """DEEP R over every weight matrix of ``model`` when learning.rewiring.connectivity is
    set, else None (dense)."""
    rewiring = cfg.learning.rewiring
    if rewiring.connectivity is None:
        return None
    weights, bias_rows = zip(*rewired_weights_and_bias_rows(model), strict=True)
    params = RewiringParams(**vars(rewiring))
    return DeepR(list(weights), optimizer, params, generator, list(bias_rows))


def build_scheduler(
    cfg: ExperimentConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """StepLR / MultiStepLR / ExponentialLR stepped once per epoch, or None."""
    sched = cfg.learning.lr_scheduler
    if sched.type == "StepLR":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=sched.step_size, gamma=sched.gamma
        )
    if sched.type == "MultiStepLR":
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(sched.milestones), gamma=sched.gamma
        )
    if sched.type == "ExponentialLR":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=sched.gamma)
    return None
