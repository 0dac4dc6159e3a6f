"""Weight bumping (published first-spike code): when too many neurons of a layer stay silent in
a batch, raise their incoming weights, doubling the bump while the same layer keeps needing it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from snnexp.modules.first_spike import FirstSpikeNetwork


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
