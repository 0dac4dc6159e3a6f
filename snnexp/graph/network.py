"""Run a graph of blocks over time: :class:`GraphNetwork`.

Steps are simulated in chunks of ``chunk_steps`` (encode, then every component of the schedule
of :mod:`snnexp.graph.spec`), so without gradients memory does not grow with the number of
steps; the neuron states and the last outputs of every block read with a delay (as many steps as
its longest delay) are carried from chunk to chunk.

A component of one block outside any cycle runs the whole chunk in one call: a convolution or
a dense block then sees ``steps x batch`` samples at once, and only neurons loop over the steps.
The blocks of a cycle run one step at a time, stage by stage; the independent neurons blocks of
a stage (all of them where every edge between populations is delayed) step as one population
(:mod:`snnexp.graph.fusion`); their inputs from outside the cycle are still computed for the
whole chunk beforehand. An input that is the same in every step (the
``direct`` encoding of an image) stays a :class:`Constant` through the stateless blocks that
follow it, so that a first convolution is computed once, not once per step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from snnexp.data.encoding import SpikeEncoder, intensity
from snnexp.functional.stepped.base import StepCoefficients, neuron_step, threshold_of
from snnexp.graph.blocks import Block, Neurons
from snnexp.graph.fusion import (
    cycle_stages,
    join_coefficients,
    join_states,
    split_state,
    stage_units,
)
from snnexp.graph.spec import INPUT, Edge, GraphSpec
from snnexp.modules.readout import CHUNK_STEPS, EVAL_SEED, SteppedReadoutNetwork


@dataclass(frozen=True)
class Constant:
    """A sequence whose every step is ``value`` ``(batch, *shape)``."""

    value: torch.Tensor

    def expand(self, steps: int) -> torch.Tensor:
        """The sequence as a ``(steps, batch, *shape)`` tensor (a view, no copy)."""
        return self.value.unsqueeze(0).expand(steps, *self.value.shape)


Sequence_ = torch.Tensor | Constant


def _tensor(value: Sequence_, steps: int) -> torch.Tensor:
    return value.expand(steps) if isinstance(value, Constant) else value


def _total(parts: list[Sequence_], steps: int) -> Sequence_:
    """The sum of a block's inputs (a Constant when all of them are)."""
    if all(isinstance(part, Constant) for part in parts):
        return Constant(sum(part.value for part in parts[1:]) + parts[0].value)  # type: ignore[union-attr]
    total = _tensor(parts[0], steps)
    for part in parts[1:]:
        total = total + _tensor(part, steps)
    return total


class GraphNetwork(SteppedReadoutNetwork):
    """A graph of blocks fed by a spike encoder, read out from its last block.

    ``forward`` returns the read-out scores ``(batch, classes)`` and the spike counts
    ``(batch, n)`` of every spiking neurons block except the label layer (n: its neurons,
    flattened), as :class:`snnexp.modules.time_stepped.TimeSteppedNetwork` does. ``generator``
    feeds random encoders during training; without one, a fixed seed is used. ``fuse``
    (default) steps the independent neurons blocks of a cycle's stage as one population
    (:mod:`snnexp.graph.fusion`; bitwise the same results, fewer operations); ``fuse=False``
    steps them one by one.
    """

    def __init__(
        self,
        spec: GraphSpec,
        blocks: Mapping[str, Block],
        encoder: SpikeEncoder,
        steps: int,
        readout: str = "spike_count",
        readout_steps: int | None = None,
        xi: float = 1.0,
        chunk_steps: int = CHUNK_STEPS,
        fuse: bool = True,
    ) -> None:
        super().__init__(encoder, steps, readout, readout_steps, xi, chunk_steps)
        self.spec = spec
        self.fuse = fuse
        self.blocks = nn.ModuleDict(dict(blocks))
        self.delays = spec.max_delays()
        self.neuron_blocks = [n for n, b in self.blocks.items() if isinstance(b, Neurons)]
        self.hidden_blocks = [
            n for n in self.neuron_blocks if n != spec.output and self.blocks[n].spiking
        ]
        self.cycle_units = {
            tuple(c): [stage_units(stage, self.blocks) for stage in cycle_stages(spec, c)]
            for c in spec.schedule
            if spec.cyclic(c)
        }

    def encode(
        self, input_times: torch.Tensor, first: int, length: int, generator: torch.Generator
    ) -> Sequence_:
        """Steps ``first ..`` of the input in the graph's input shape; ``direct``: a Constant
        of the intensities the latency code stands for."""
        batch = input_times.shape[0]
        shape = self.spec.input_shape
        if self.encoder.type == "direct":
            value = intensity(input_times, self.encoder.t_early, self.encoder.t_late)
            return Constant(value.reshape(batch, *shape))
        spikes = self.encoder(input_times, first, length, generator)
        return spikes.reshape(length, batch, *shape)

    def simulate(
        self, input_times: torch.Tensor, record: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, list[torch.Tensor]]]:
        """Run all steps; returns scores, hidden spike counts and (``record``) full traces:
        ``input``, and for the k-th neurons block (config order) ``spikes_k`` (or
        ``output_k`` for a membrane read-out), ``membrane_k`` and ``threshold_k``, each
        ``(steps, batch, neurons)``."""
        batch, device, dtype = input_times.shape[0], input_times.device, input_times.dtype
        generator = self.generator or torch.Generator().manual_seed(EVAL_SEED)
        run = _Run(
            states={n: b.initial_state(batch, device, dtype) for n, b in self.blocks.items()},
            history={
                source: torch.zeros(
                    (delay, batch, *self._shape(source)), device=device, dtype=dtype
                )
                for source, delay in self.delays.items()
            },
            record=record,
        )
        counts = {n: 0.0 for n in self.hidden_blocks}
        readout = self.new_readout()
        traces: dict[str, list[torch.Tensor]] = {}
        for first in range(0, self.steps, self.chunk_steps):
            length = min(self.chunk_steps, self.steps - first)
            run.first, run.length, run.traces, run.past_and_now = first, length, {}, {}
            run.outputs = {INPUT: self.encode(input_times, first, length, generator)}
            for component in self.spec.schedule:
                if self.spec.cyclic(component):
                    self._run_cycle(component, run)
                else:
                    name = component[0]
                    inputs = self.spec.blocks[name].inputs
                    x = _total([self._edge(e, run) for e in inputs], length)
                    run.outputs[name] = self._run_block(name, x, run)
            for source in run.history:
                run.history[source] = run.joined(source)[-self.delays[source] :]
            for name in self.hidden_blocks:
                counts[name] = counts[name] + run.tensor(name).sum(0).flatten(1)
            readout.add(run.tensor(self.spec.output), first)
            if record:
                self._keep_traces(run, traces)
            run.outputs = {}
        hidden = [counts[n] for n in self.hidden_blocks]  # type: ignore[misc]
        return readout.scores(), hidden, traces

    def _shape(self, source: str) -> tuple[int, ...]:
        if source == INPUT:
            return self.spec.input_shape
        return self.spec.blocks[source].out_shape

    def _edge(self, edge: Edge, run: _Run) -> Sequence_:
        """The chunk of ``edge.source``'s output, ``edge.delay`` steps late."""
        if edge.delay == 0:
            return run.outputs[edge.source]
        offset = len(run.history[edge.source]) - edge.delay
        return run.joined(edge.source)[offset : offset + run.length]

    def _run_block(self, name: str, x: Sequence_, run: _Run) -> Sequence_:
        """A block outside any cycle, over the whole chunk."""
        block = self.blocks[name]
        if isinstance(x, Constant) and not (block.stateful or block.timed):
            return Constant(block.apply(x.value))
        y, run.states[name], trace = block.run(
            _tensor(x, run.length), run.states[name], run.first, run.record
        )
        run.add_traces(name, trace)
        return y

    def _run_cycle(self, component: list[str], run: _Run) -> None:
        """The blocks of a cycle, one step at a time, stage by stage (:mod:`.fusion`): the
        fusable neurons blocks of a stage as one population, the others one by one; their
        inputs from outside the cycle are gathered for the whole chunk first."""
        members = set(component)
        inputs = {name: self.spec.blocks[name].inputs for name in component}
        outside = {
            name: [
                _tensor(self._edge(e, run), run.length) for e in edges if e.source not in members
            ]
            for name, edges in inputs.items()
        }
        inside = {name: [e for e in edges if e.source in members] for name, edges in inputs.items()}
        params = {
            name: self.blocks[name].neurons.step_params()
            for name in component
            if isinstance(self.blocks[name], Neurons)
        }
        stages = self.cycle_units[tuple(component)]
        groups = {
            tuple(unit): _Group(unit, self.blocks, params, run.states)
            for stage in stages
            for unit in stage
            if len(unit) > 1 and self.fuse
        }
        steps: dict[str, list[torch.Tensor]] = {name: [] for name in component}

        def step_input(name: str, t: int) -> torch.Tensor:
            parts = [part[t] for part in outside[name]]
            for edge in inside[name]:
                k = t - edge.delay
                parts.append(steps[edge.source][k] if k >= 0 else run.history[edge.source][k])
            x = parts[0]
            for part in parts[1:]:
                x = x + part
            return x

        for t in range(run.length):
            for stage in stages:
                for unit in stage:
                    group = groups.get(tuple(unit))
                    if group is not None:
                        xs = [step_input(name, t) for name in unit]
                        for name, (y, trace) in zip(unit, group.step(xs, run.record), strict=True):
                            steps[name].append(y)
                            run.add_traces(name, {key: value[None] for key, value in trace.items()})
                        continue
                    for name in unit:
                        steps[name].append(
                            self._cycle_step(name, step_input(name, t), params, run, t)
                        )
        for group in groups.values():
            run.states |= group.states()
        for name in component:
            run.outputs[name] = torch.stack(steps[name])

    def _cycle_step(
        self,
        name: str,
        x: torch.Tensor,
        params: Mapping[str, StepCoefficients],
        run: _Run,
        t: int,
    ) -> torch.Tensor:
        """One step of one block of a cycle."""
        block = self.blocks[name]
        if name not in params:
            return block.at_step(x, run.first + t)
        y, run.states[name], trace = block.step(x, run.states[name], params[name], run.record)
        run.add_traces(name, {key: value[None] for key, value in trace.items()})
        return y

    def _keep_traces(self, run: _Run, traces: dict[str, list[torch.Tensor]]) -> None:
        """Append the chunk's input and neuron traces (flattened per step and sample)."""
        traces.setdefault("input", []).append(run.tensor(INPUT).flatten(2))
        for k, name in enumerate(self.neuron_blocks):
            kind = "spikes" if self.blocks[name].spiking else "output"
            traces.setdefault(f"{kind}_{k}", []).append(run.tensor(name).flatten(2))
            for key, parts in run.traces.get(name, {}).items():
                traces.setdefault(f"{key}_{k}", []).append(torch.cat(parts))


class _Group:
    """Fusable neurons blocks of one stage of a cycle, stepped as one population over a chunk
    (:mod:`snnexp.graph.fusion`)."""

    def __init__(
        self,
        names: Sequence[str],
        blocks: Mapping[str, Block],
        params: Mapping[str, StepCoefficients],
        states: Mapping[str, Any],
    ) -> None:
        self.names = list(names)
        self.sizes = [blocks[name].neurons.size for name in names]
        self.surrogate = blocks[names[0]].neurons.surrogate
        self.params = join_coefficients([params[name] for name in names], self.sizes)
        self.state = join_states([states[name] for name in names])

    def step(
        self, xs: Sequence[torch.Tensor], record: bool
    ) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        """One step of every block: its output (shaped as its input) and, with ``record``, its
        membrane (and threshold) traces, as :meth:`~snnexp.graph.blocks.Neurons.step` gives."""
        current = torch.cat([x.reshape(x.shape[0], -1) for x in xs], dim=1)
        self.state = neuron_step(current, self.state, self.params, self.surrogate)
        outputs = self.state.z.split(self.sizes, dim=1)
        traces: list[dict[str, torch.Tensor]] = [{} for _ in xs]
        if record:
            for trace, v in zip(traces, self.state.v.split(self.sizes, dim=1), strict=True):
                trace["membrane"] = v
            if self.state.a is not None:
                theta = threshold_of(self.state, self.params).split(self.sizes, dim=1)
                for trace, value in zip(traces, theta, strict=True):
                    trace["threshold"] = value
        return [
            (z.reshape(x.shape), trace) for z, x, trace in zip(outputs, xs, traces, strict=True)
        ]

    def states(self) -> dict[str, Any]:
        """The joined state handed back to its blocks."""
        return dict(zip(self.names, split_state(self.state, self.sizes), strict=True))


@dataclass
class _Run:
    """What one simulation carries: block states, the last outputs of every source read with
    a delay, and the current chunk (its first step, length, block outputs and traces)."""

    states: dict[str, Any]
    history: dict[str, torch.Tensor]
    record: bool
    first: int = 0
    length: int = 0
    outputs: dict[str, Sequence_] = field(default_factory=dict)
    traces: dict[str, dict[str, list[torch.Tensor]]] = field(default_factory=dict)
    past_and_now: dict[str, torch.Tensor] = field(default_factory=dict)

    def tensor(self, name: str) -> torch.Tensor:
        """The chunk of ``name``'s output as a ``(length, batch, *shape)`` tensor."""
        return _tensor(self.outputs[name], self.length)

    def joined(self, source: str) -> torch.Tensor:
        """The kept past outputs of ``source`` followed by this chunk's, joined once per chunk
        (its delayed edges and the history of the next chunk read it)."""
        if source not in self.past_and_now:
            self.past_and_now[source] = torch.cat([self.history[source], self.tensor(source)])
        return self.past_and_now[source]

    def add_traces(self, name: str, trace: Mapping[str, torch.Tensor]) -> None:
        """Append a block's recorded traces (a chunk's, or a step's with a leading axis)."""
        for key, value in trace.items():
            self.traces.setdefault(name, {}).setdefault(key, []).append(value)
