"""Fusing the independent neurons blocks of a cycle's step into one population.

Within one step of a cycle, the blocks split into stages by the cycle's undelayed edges: a
block whose inputs from inside the cycle are all delayed is in stage 0, a block reading a
stage-k block of the same step is in stage k + 1. The blocks of a stage do not depend on each
other. Where every edge between populations is delayed (the "SNN required features" form:
``linear -> neurons`` populations connected with one-step delays), all neurons blocks of a stage
are independent, and those of one model and setting step as one population: their currents and
states are joined along the neurons, the per-step coefficients become per-neuron tensors, and
one neuron step replaces one per block. Every operation of a neuron step is elementwise, so the
joined step gives bitwise the spikes, states and gradients of the separate ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from snnexp.functional.stepped.base import NeuronState, StepCoefficients
from snnexp.graph.blocks import Block, Neurons
from snnexp.graph.spec import GraphSpec


def cycle_stages(spec: GraphSpec, component: Sequence[str]) -> list[list[str]]:
    """The blocks of a cycle grouped by stage (see the module docstring), each stage in the
    component's step order."""
    members = set(component)
    stage: dict[str, int] = {}
    for name in component:
        sources = [
            e.source for e in spec.blocks[name].inputs if e.delay == 0 and e.source in members
        ]
        stage[name] = 1 + max((stage[s] for s in sources), default=-1)
    return [[n for n in component if stage[n] == k] for k in range(max(stage.values()) + 1)]


def _fusion_key(block: Block) -> tuple | None:
    """What neurons blocks must share to step as one population (None: never fused: not a
    spiking neurons block, recurrent, or with learnable time constants, whose gradients would
    be summed in another order)."""
    if not isinstance(block, Neurons) or not block.spiking or block.recurrent_weight is not None:
        return None
    neurons = block.neurons
    if isinstance(neurons.tau_mem, torch.nn.Parameter):
        return None
    return (
        neurons.model,
        neurons.reset,
        neurons.threshold,
        neurons.refractory_steps,
        neurons.tau_adapt,
        neurons.resistance,
        neurons.capacitance,
        neurons.dt,
        neurons.surrogate,
        neurons.tau_mem.dtype,
    )


def stage_units(stage: Sequence[str], blocks: Mapping[str, Block]) -> list[list[str]]:
    """The stage as units that run together: groups of two or more fusable neurons blocks of
    one key, and every other block alone; in the stage's order of first appearance."""
    groups: dict[tuple, list[str]] = {}
    units: list[list[str]] = []
    for name in stage:
        key = _fusion_key(blocks[name])
        if key is None:
            units.append([name])
        elif key in groups:
            groups[key].append(name)
        else:
            groups[key] = [name]
            units.append(groups[key])
    return units


def _join_values(
    values: Sequence[float | torch.Tensor], sizes: Sequence[int]
) -> float | torch.Tensor:
    """One coefficient of several populations: the common number, or per-neuron values."""
    if all(not isinstance(v, torch.Tensor) for v in values) and len(set(values)) == 1:
        return values[0]
    like = next(v for v in values if isinstance(v, torch.Tensor))
    parts = [torch.as_tensor(v, dtype=like.dtype, device=like.device) for v in values]
    return torch.cat(
        [p.expand(n) if p.numel() == 1 else p for p, n in zip(parts, sizes, strict=True)]
    )


def join_coefficients(params: Sequence[StepCoefficients], sizes: Sequence[int]) -> StepCoefficients:
    """The step coefficients of populations of one fusion key as those of one population."""
    first = params[0]
    return StepCoefficients(
        model=first.model,
        mem_decay=_join_values([p.mem_decay for p in params], sizes),
        syn_decay=_join_values([p.syn_decay for p in params], sizes),
        adapt_decay=first.adapt_decay,
        adapt_strength=_join_values([p.adapt_strength for p in params], sizes),
        input_gain=_join_values([p.input_gain for p in params], sizes),
        threshold=first.threshold,
        reset=first.reset,
        refractory_steps=first.refractory_steps,
    )


def join_states(states: Sequence[NeuronState]) -> NeuronState:
    """The states ``(batch, n_k)`` of several populations as one ``(batch, sum n_k)``."""
    return NeuronState(
        *(
            None if parts[0] is None else torch.cat(parts, dim=1)
            for parts in zip(*states, strict=True)
        )
    )


def split_state(state: NeuronState, sizes: Sequence[int]) -> list[NeuronState]:
    """:func:`join_states` undone."""
    fields = [None if f is None else f.split(list(sizes), dim=1) for f in state]
    return [NeuronState(*(None if f is None else f[k] for f in fields)) for k in range(len(sizes))]
