"""Weight bumping (published first-spike code): when too many neurons of a layer stay silent in
a batch, raise their incoming weights, doubling the bump while the same layer keeps needing it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from snnexp.modules.first_spike import FirstSpikeNetwork
from snnexp.rules import LEARNING_RULES
from snnexp.rules.plugin import PluginContext, TrainerPlugin


@dataclass
class BumpState:
    """Weight bumping carried across batches: the current bump and the layer bumped last."""

    value: float
    last_layer: int = -1


def layer_missing_spikes(
    layer_times: list[torch.Tensor],
    max_missing: list[float],
    drivable: Sequence[torch.Tensor | None] = (),
) -> tuple[int, torch.Tensor] | None:
    """The first layer whose fraction of non-spiking (+inf or NaN) entries exceeds its
    ``max_missing``, with the mask of its neurons that were silent in at least one sample.
    ``drivable[k]``, where given, masks the neurons of layer k that bumping can act on (under
    DEEP R: those with an active input); only they are counted."""
    for k, times in enumerate(layer_times):
        silent = ~torch.isfinite(times)
        mask = drivable[k] if k < len(drivable) else None
        if mask is not None:
            silent = silent & mask
            counted = silent.double().sum() / max(int(mask.sum()) * len(times), 1)
        else:
            counted = silent.double().mean()
        if counted.item() > max_missing[k]:
            return k, silent.any(dim=0)
    return None


def bump_weights(
    model: FirstSpikeNetwork,
    layer: int,
    silent: torch.Tensor,
    value: float,
    targeted: bool,
    synapses: torch.Tensor | None = None,
) -> None:
    """Raise the incoming weights of the silent neurons of ``layer`` (all of them if not
    ``targeted``) by ``value``; only the ``synapses`` masked True where a mask is given (under
    DEEP R the active ones: a dormant synapse stays dormant, an inhibitory one is weakened and,
    once its theta reaches 0, rewired)."""
    weight = model.layers[layer].weight
    step = value * (silent.to(weight.dtype) if targeted else torch.ones_like(weight))
    if synapses is not None:
        step = step * synapses
    with torch.no_grad():
        weight += step


class WeightBumping(TrainerPlugin):
    """Weight bumping as published, for first-spike networks with
    ``training.weight_bumping.enabled``: a batch in which a layer misses more spikes than
    ``max_missing`` raises the silent neurons' incoming weights (after the optimizer step, or
    instead of it with ``skip_step``); the bump doubles while the same layer keeps needing it
    (``exponential``), and a batch without bumping resets it. Its state is saved in every run.

    Under DEEP R only the active synapses exist (``context.synapse_mask``): only neurons with an
    active input count as drivable, and only active synapses are bumped.
    """

    reads_batch_outputs = True
    checkpoint_key = "bump"

    def __init__(self, context: PluginContext) -> None:
        cfg = context.cfg
        self.settings = cfg.training.weight_bumping
        self.active = self.settings.enabled and not LEARNING_RULES[cfg.learning.rule].scores
        self.model = context.model
        self.mask_of = context.synapse_mask
        self.state = BumpState(self.settings.value)
        self.missing: tuple[int, torch.Tensor] | None = None
        self.bumps = 0

    def begin_epoch(self) -> None:
        self.bumps = 0

    def before_step(self, layer_times: list[torch.Tensor]) -> bool:
        """Find the layer to bump (the first with too many missing spikes) and its silent
        neurons; with ``skip_step`` such a batch makes no optimizer step."""
        self.missing = None
        if self.active:
            synapses = [self._synapses(k) for k in range(len(layer_times))]
            drivable = [None if mask is None else mask.any(dim=0) for mask in synapses]
            self.missing = layer_missing_spikes(layer_times, self.settings.max_missing, drivable)
        return self.missing is not None and self.settings.skip_step

    def after_step(self) -> bool:
        """Bump the layer found by :meth:`before_step`; returns whether it bumped."""
        if self.missing is None:
            self.state.last_layer = -1
            return False
        layer, silent = self.missing
        if self.settings.exponential and layer == self.state.last_layer:
            self.state.value *= 2
        else:
            self.state.value = self.settings.value
        self.state.last_layer = layer
        synapses = self._synapses(layer)
        bump_weights(self.model, layer, silent, self.state.value, self.settings.targeted, synapses)
        self.bumps += 1
        return True

    def _synapses(self, layer: int) -> torch.Tensor | None:
        return self.mask_of(self.model.layers[layer].weight)

    def epoch_counts(self) -> dict[str, int]:
        return {"bumps": self.bumps}

    def resume_epoch(self, counts: dict[str, int]) -> None:
        self.bumps = counts["bumps"]

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.state.value, "last_layer": self.state.last_layer}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = BumpState(float(state["value"]), int(state["last_layer"]))
