"""The interface of a trainer plug-in: something that acts around the optimizer step of every
batch, whatever the learning rule (weight bumping, DEEP R rewiring).

Per batch the trainer calls, on every plug-in in order:

1. :meth:`TrainerPlugin.before_step` with the batch's spike times (hidden layers, label layer);
   if any plug-in answers True, the batch makes no optimizer step;
2. the loss's backward pass, then :meth:`TrainerPlugin.optimizer_step`: a plug-in may take the
   step over (DEEP R); the first that does makes it, else the optimizer steps;
3. :meth:`TrainerPlugin.after_step`; if a plug-in changed the weights there, every plug-in's
   :meth:`TrainerPlugin.weights_changed` restores its constraints.

A plug-in's counters go into the epoch's history row (:meth:`TrainerPlugin.epoch_counts`), its
state into every savepoint under its ``checkpoint_key``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from snnexp.config import ExperimentConfig


@dataclass
class PluginContext:
    """What a plug-in is built from: the config, the model, its optimizer and the generator of
    the run (every random draw of a plug-in comes from it)."""

    cfg: ExperimentConfig
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    synapse_mask: Callable[[torch.Tensor], torch.Tensor | None] = lambda _weight: None
    """The synapses of a weight that exist, as the run's plug-ins say (None: all)."""


class TrainerPlugin:
    """Base class: every hook does nothing."""

    checkpoint_key: ClassVar[str]
    """The plug-in's entry in checkpoints (None there when the run has no such plug-in)."""
    reads_batch_outputs: ClassVar[bool] = False
    """Whether :meth:`before_step` decides on the layers' outputs (data-parallel training then
    gathers the whole batch's for it)."""

    @classmethod
    def wanted(cls, context: PluginContext) -> bool:
        """Whether a run with this context has the plug-in."""
        return True

    def begin_epoch(self) -> None:
        """Reset the epoch's counters."""

    def before_step(self, layer_times: list[torch.Tensor]) -> bool:
        """See the batch's outputs before the step; True: make no optimizer step."""
        return False

    def optimizer_step(self) -> bool:
        """Make the optimizer step instead of the trainer; True when it did."""
        return False

    def after_step(self) -> bool:
        """Act after the step; True when the weights were changed."""
        return False

    def weights_changed(self) -> None:
        """Restore the plug-in's constraints after another plug-in changed the weights."""

    def synapse_mask(self, weight: torch.Tensor) -> torch.Tensor | None:
        """The synapses of ``weight`` that exist (None: all of them)."""
        return None

    def epoch_counts(self) -> dict[str, int]:
        """History columns this plug-in fills for the epoch so far."""
        return {}

    def resume_epoch(self, counts: dict[str, int]) -> None:
        """Resume an interrupted epoch: take up its counters (:meth:`epoch_counts`) so far."""

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and numbers to save in checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
