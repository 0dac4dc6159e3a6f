"""Learning rules, one registry entry each, and the plug-ins of the trainer.

A rule (``learning.rule``) says which network is trained and how: the exact first-spike rules
train :class:`~snnexp.modules.first_spike.FirstSpikeNetwork` on exact spike times and their exact
gradients (:mod:`.first_spike`); BPTT trains a time-stepped stack or graph of blocks with
surrogate gradients (:mod:`.bptt`); ``ann`` trains the ReLU network of a graph of blocks, the
network that ANN -> SNN conversion starts from (:mod:`.ann`). What acts around the optimizer
step is a plug-in of the trainer, independent of the rule: weight bumping
(:mod:`.weight_bumping`) and DEEP R rewiring (:mod:`.deep_r`), see :mod:`.plugin`.

This module does not import torch: the config reads the rules' names and needs from it. A new
rule is one module with ``build_network(cfg, generator, training)`` and ``build_loss(cfg)`` plus
one :class:`LearningRule` entry in :data:`LEARNING_RULES`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class LearningRule:
    """What the config, the trainer and the figures need to know about a rule.

    ``module`` implements it (``build_network``, ``build_loss``); ``time_stepped`` whether its
    network is simulated step by step, ``analog`` whether it is an ANN (no spikes, no time);
    ``losses`` are the ``learning.loss.type`` values it trains with; ``tau_ratio`` the
    tau_mem / tau_syn its exact math requires (None: any); ``rewiring`` whether it needs
    learning.rewiring.connectivity; ``fixes`` what to change when training with it diverges.
    """

    name: str
    summary: str
    module: str
    time_stepped: bool
    losses: tuple[str, ...]
    tau_ratio: float | None = None
    rewiring: bool = False
    fixes: str = ""
    analog: bool = False

    @property
    def scores(self) -> bool:
        """Whether its label outputs are scores (time-stepped and analog networks), not first
        spike times."""
        return self.time_stepped or self.analog

    def implementation(self) -> ModuleType:
        """The module that builds the rule's network and loss."""
        return importlib.import_module(self.module)


FIRST_SPIKE_LOSSES = ("ttfs", "mse")
READOUT_LOSSES = ("cross_entropy", "mse_count")

FIRST_SPIKE_FIXES = (
    "lower learning.optimizer.lr, or set or lower training.max_dw_norm (it clips each weight "
    "update; published: 0.2), or continue from an earlier savepoint with a lower learning rate"
)
BPTT_FIXES = (
    "lower learning.optimizer.lr or model.weight_std (or the blocks' init), or continue from "
    "an earlier savepoint with a lower learning rate"
)

LEARNING_RULES: dict[str, LearningRule] = {
    rule.name: rule
    for rule in (
        LearningRule(
            "first_spike_et",
            "exact first-spike learning, tau_mem = tau_syn",
            "snnexp.rules.first_spike",
            time_stepped=False,
            losses=FIRST_SPIKE_LOSSES,
            tau_ratio=1.0,
            fixes=FIRST_SPIKE_FIXES,
        ),
        LearningRule(
            "first_spike_dt",
            "exact first-spike learning, tau_mem = 2 tau_syn",
            "snnexp.rules.first_spike",
            time_stepped=False,
            losses=FIRST_SPIKE_LOSSES,
            tau_ratio=2.0,
            fixes=FIRST_SPIKE_FIXES,
        ),
        LearningRule(
            "bptt",
            "backpropagation through time with surrogate gradients",
            "snnexp.rules.bptt",
            time_stepped=True,
            losses=READOUT_LOSSES,
            fixes=BPTT_FIXES,
        ),
        LearningRule(
            "deep_r",
            "BPTT with DEEP R rewiring at a fixed connectivity",
            "snnexp.rules.bptt",
            time_stepped=True,
            losses=READOUT_LOSSES,
            rewiring=True,
            fixes=BPTT_FIXES,
        ),
        LearningRule(
            "ann",
            "an artificial network of the blocks (ReLU units), trained by backpropagation",
            "snnexp.rules.ann",
            time_stepped=False,
            losses=("cross_entropy",),
            fixes="lower learning.optimizer.lr, or continue from an earlier savepoint with a "
            "lower learning rate",
            analog=True,
        ),
    )
}
"""Every rule, by ``learning.rule`` name."""
