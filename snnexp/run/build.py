"""Build the pieces of an experiment from a validated config: device, network, loss, optimizer.

Data flows one way: config -> data + model -> train loop -> results -> plots. Every builder here
is deterministic given the config (weights are drawn from a generator seeded from it).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from snnexp.config import ExperimentConfig
from snnexp.errors import SnnexpError
from snnexp.functional.threads import torch_single_threaded
from snnexp.graph.analog import AnalogNetwork
from snnexp.graph.network import GraphNetwork
from snnexp.losses.readout import ReadoutLoss
from snnexp.losses.spike_time import SpikeTimeLoss
from snnexp.modules.first_spike import FirstSpikeNetwork
from snnexp.modules.time_stepped import TimeSteppedNetwork
from snnexp.rules import LEARNING_RULES, LearningRule


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SnnexpError(
            "device 'cuda' was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto"
        )
    return torch.device(name)


def thread_mode(cfg: ExperimentConfig) -> AbstractContextManager[None]:
    """The context that runs of ``cfg`` compute in: with ``training.thread_independent``, torch
    on one thread and the large products in fixed parts on the others
    (:mod:`snnexp.functional.fixed_partition`), so that every result is bitwise the same with
    any number of CPU threads; else torch's own threading."""
    return torch_single_threaded() if cfg.training.thread_independent else nullcontext()


def rule_of(cfg: ExperimentConfig) -> LearningRule:
    """The registered learning rule of ``cfg`` (validated by the config)."""
    return LEARNING_RULES[cfg.learning.rule]


def build_network(
    cfg: ExperimentConfig, generator: torch.Generator | None = None, training: bool = True
) -> FirstSpikeNetwork | TimeSteppedNetwork | GraphNetwork | AnalogNetwork:
    """The network that ``cfg``'s learning rule trains, weights drawn from ``generator``:
    first-spike layers for the first-spike rules, a :class:`TimeSteppedNetwork` (or a
    :class:`GraphNetwork` where ``model.blocks`` is given) for BPTT. ``training=False`` builds
    it for evaluation only (then ``model.simulator: stepped`` is allowed for first-spike
    networks)."""
    return rule_of(cfg).implementation().build_network(cfg, generator, training)


def build_loss(cfg: ExperimentConfig) -> SpikeTimeLoss | ReadoutLoss:
    """The configured loss and read-out of ``cfg``'s learning rule."""
    return rule_of(cfg).implementation().build_loss(cfg)


def build_optimizer(cfg: ExperimentConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam or SGD (+ momentum) over the model's parameters."""
    opt = cfg.learning.optimizer
    if opt.type == "adam":
        return torch.optim.Adam(model.parameters(), lr=opt.lr)
    return torch.optim.SGD(model.parameters(), lr=opt.lr, momentum=opt.momentum)


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
