r"""Dynamic thresholds of time-to-first-spike neurons (``neurons`` blocks with
``dynamic_threshold: true``; the ``ttfs_dyn_thresh`` conversion code).

A neuron that fires once should not fire while inputs that may still fire (and may inhibit it)
have not: its threshold is raised by the weights of those inputs (Rueckauer & Liu 2018; the
``ttfs_dyn_thresh`` backend of the SNN toolbox),

    theta_i(t) = theta + M_i(t),    M_i(t) = sum_j |w_ij| p_j(t),

where p_j(t) = 1 while input neuron j has not fired before step t and its own input current at
t is positive (it is on its way to a spike), else 0; the p_j pass through the blocks between
the two populations as the spikes do (pooling, flatten), then through |W| without bias. Firing
when v_t >= theta + M_t is firing when v_t - M_t >= theta, so for a neuron that integrates
without leak (``iaf``) the raised threshold is the input current

    x'_t = x_t - (M_t - M_{t-1}),   M_{-1} = 0,

which is how it is applied here. A neuron whose inputs are the analog image (no spikes) keeps
its threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from snnexp.graph.blocks import Block, Hold
from snnexp.graph.spec import INPUT, GraphSpec


@dataclass(frozen=True)
class ThresholdPath:
    """The neurons block ``source`` whose prospective spikes raise the thresholds of a neurons
    block, and the blocks between them in the order of flow."""

    source: str
    blocks: tuple[str, ...]


def threshold_paths(spec: GraphSpec) -> dict[str, ThresholdPath]:
    """Neurons block with a dynamic threshold -> its path back to the neurons block before it
    (none for a block fed by the input alone). Each block on the way must read exactly one
    block, without delay."""
    paths = {}
    for name, block in spec.blocks.items():
        if block.type != "neurons" or not block.params.get("dynamic_threshold"):
            continue
        between: list[str] = []
        current = name
        while True:
            edges = spec.blocks[current].inputs
            if len(edges) != 1 or edges[0].delay:
                raise ValueError(
                    f"block {current!r} on the way to {name!r} (dynamic_threshold) must read "
                    "exactly one block without delay"
                )
            source = edges[0].source
            if source == INPUT:
                break
            if spec.blocks[source].type == "neurons":
                paths[name] = ThresholdPath(source, tuple(reversed(between)))
                break
            between.append(source)
            current = source
    return paths


def prospective(
    current: torch.Tensor, spikes: torch.Tensor, fired: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """p_t = [not fired before t] [current_t > 0] of a chunk ``(steps, batch, *shape)`` and
    whether each neuron has fired by the chunk's end; ``fired``: by the chunk's start (None:
    the first chunk)."""
    fired_before = torch.zeros_like(spikes[0]) if fired is None else fired
    earlier = torch.cat([fired_before.unsqueeze(0), spikes[:-1]]).cumsum(dim=0)
    waiting = (earlier == 0).to(spikes.dtype)
    fired_now = ((earlier[-1] + spikes[-1]) > 0).to(spikes.dtype)
    return waiting * (current > 0).to(spikes.dtype), fired_now


def missing_input(
    p: torch.Tensor, path: ThresholdPath, blocks: Mapping[str, Block]
) -> torch.Tensor:
    """M_t: the prospective spikes ``(steps, batch, *shape)`` through the blocks of ``path``,
    weighted blocks with the magnitudes of their weights and no bias."""
    steps, batch = p.shape[:2]
    x = p.reshape(steps * batch, *p.shape[2:])
    for name in path.blocks:
        block = blocks[name]
        magnitude = getattr(block, "magnitude", None)
        if magnitude is not None:
            x = magnitude(x)
        elif not isinstance(block, Hold):
            x = block.apply(x)
    return x.reshape(steps, batch, *x.shape[1:])


def raised_threshold_current(
    x: torch.Tensor, missing: torch.Tensor, previous: torch.Tensor | None
) -> torch.Tensor:
    """x'_t = x_t - (M_t - M_{t-1}) for a chunk, ``previous`` = M of the step before it."""
    before = torch.zeros_like(missing[0]) if previous is None else previous
    return x - (missing - torch.cat([before.unsqueeze(0), missing[:-1]]))
