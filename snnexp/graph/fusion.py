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

The linear blocks between the populations fuse too (:func:`absorbed_linears`): a linear block
of the cycle that reads one block ``src`` with a delay d >= 1 and is read, undelayed, only by
fused neurons blocks adds ``x_src(t - d) W`` to their current. For a fused population P the
delayed sources ``s_1 .. s_m`` of all such blocks give one product per step,

    I_P(t) = I_rest(t) + [x_{s_1}(t - d_1), ..., x_{s_m}(t - d_m)] W_P,

W_P the matrix whose block (s_j, p) is the sum of the weights of the linear blocks from s_j to
member p (zero where there is none), and I_rest the current from everywhere else (the constant
and timed biases of the absorbed blocks included). In a -> b -> c -> a that is one matrix product
for the three connections. The sums are the same but in another order, so results agree to
rounding, not bitwise, with those of the separate blocks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from snnexp.functional.stepped.base import NeuronState, StepCoefficients
from snnexp.graph.blocks import Block, Linear, Neurons
from snnexp.graph.spec import GraphSpec

FUSION_LEVELS = ("none", "neurons", "all")
"""What of a delayed cycle steps as one computation: nothing (every block by itself), the
neurons blocks of a stage (bitwise the results of ``none``), or also the linear blocks between
them (equal to rounding)."""


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


def absorbed_linears(
    spec: GraphSpec, blocks: Mapping[str, Block], component: Sequence[str], fused: set[str]
) -> set[str]:
    """The linear blocks of a cycle that fuse into the populations reading them (see the module
    docstring): one input, delayed, from the cycle; every reader a block of ``fused`` that reads
    it undelayed."""
    members = set(component)
    readers: dict[str, list[tuple[str, int]]] = {name: [] for name in component}
    for name, block in spec.blocks.items():
        for edge in block.inputs:
            if edge.source in readers:
                readers[edge.source].append((name, edge.delay))
    absorbed = set()
    for name in component:
        edges = spec.blocks[name].inputs
        if (
            isinstance(blocks[name], Linear)
            and len(edges) == 1
            and edges[0].delay >= 1
            and edges[0].source in members
            and readers[name]
            and all(reader in fused and delay == 0 for reader, delay in readers[name])
        ):
            absorbed.add(name)
    return absorbed


@dataclass(frozen=True)
class JoinedSynapses:
    """The absorbed linear blocks feeding one fused population: its delayed ``sources``
    ``(block, delay)`` in order, and ``links`` ``(source index, member index, linear block)``."""

    sources: list[tuple[str, int]]
    links: list[tuple[int, int, str]]

    @classmethod
    def of(
        cls, spec: GraphSpec, members: Sequence[str], absorbed: set[str]
    ) -> JoinedSynapses | None:
        """Those of the population ``members`` (None: no absorbed block feeds it); the
        members' own outputs of the step before come first, in member order (where they are
        all the sources, the population's last spikes are the product's input as they are)."""
        found: list[tuple[tuple[str, int], int, str]] = []
        for k, member in enumerate(members):
            for edge in spec.blocks[member].inputs:
                if edge.source in absorbed:
                    (source,) = spec.blocks[edge.source].inputs
                    found.append(((source.source, source.delay), k, edge.source))
        if not found:
            return None
        keys = {key for key, _, _ in found}
        own = [(m, 1) for m in members if (m, 1) in keys]
        sources = list(dict.fromkeys(own + [key for key, _, _ in found]))
        return cls(sources, [(sources.index(key), k, name) for key, k, name in found])

    def weight(
        self, spec: GraphSpec, blocks: Mapping[str, Block], sizes: Sequence[int]
    ) -> torch.Tensor:
        """W of the module docstring: ``(sum of source sizes, sum of member sizes)``."""
        parts: dict[tuple[int, int], torch.Tensor] = {}
        for j, k, name in self.links:
            weight = blocks[name].weight
            parts[j, k] = parts[j, k] + weight if (j, k) in parts else weight
        like = next(iter(parts.values()))
        rows = []
        for j, (source, _) in enumerate(self.sources):
            n_source = math.prod(spec.blocks[source].out_shape)
            row = [
                parts[j, k] if (j, k) in parts else like.new_zeros(n_source, n)
                for k, n in enumerate(sizes)
            ]
            rows.append(torch.cat(row, dim=1))
        return torch.cat(rows)
