"""Run a graph of blocks over time: :class:`GraphNetwork`.

Steps are simulated in chunks of ``chunk_steps`` (encode, then every component of the schedule
of :mod:`snnexp.graph.spec`), so without gradients memory does not grow with the number of
steps; the neuron states and the last outputs of every block read with a delay (as many steps as
its longest delay) are carried from chunk to chunk.

A component of one block outside any cycle runs the whole chunk in one call: a convolution or
a dense block then sees ``steps x batch`` samples at once, and only neurons loop over the steps.
The blocks of a cycle run one step at a time, stage by stage; the independent neurons blocks of
a stage (all of them where every edge between populations is delayed) step as one population,
and the delayed linear blocks feeding it as one matrix product (:mod:`snnexp.graph.fusion`);
their inputs from outside the cycle are still computed for the whole chunk beforehand. An input
that is the same in every step (the ``direct`` encoding of an image) stays a :class:`Constant`
through the stateless blocks that follow it, so that a first convolution is computed once, not
once per step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from snnexp.data.encoding import SpikeEncoder, intensity
from snnexp.functional import fixed_partition
from snnexp.functional.stepped.base import StepCoefficients, neuron_step, threshold_of
from snnexp.graph.blocks import Block, Neurons
from snnexp.graph.dynamic_threshold import (
    missing_input,
    prospective,
    raised_threshold_current,
    threshold_paths,
)
from snnexp.graph.fusion import (
    FUSION_LEVELS,
    JoinedSynapses,
    absorbed_linears,
    cycle_stages,
    join_coefficients,
    join_states,
    split_state,
    stage_units,
)
from snnexp.graph.spec import INPUT, Edge, GraphSpec
from snnexp.modules.readout import CHUNK_STEPS, SteppedReadoutNetwork
from snnexp.modules.weight_products import WeightProducts


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


@dataclass
class SynapticEvents:
    """Synaptic operations per sample ``(batch,)`` into one weighted block whose input is a
    sequence (not a constant): with ``onsets`` false each x_t times the fan-out of its input,
    summed over the steps (spike trains: one operation per spike and synapse); with ``onsets``
    true each input that turned on, once (held inputs of the time-to-first-spike code, where
    a neuron's one spike starts a step current)."""

    onsets: bool
    total: torch.Tensor | float = 0.0
    last: torch.Tensor | None = None

    def add(self, x: torch.Tensor, fan_out: torch.Tensor) -> None:
        """Take in a chunk ``(steps, batch, *in_shape)`` of the block's input."""
        if self.onsets:
            before = torch.zeros_like(x[0]) if self.last is None else self.last
            events = (x[0] - before).clamp(min=0) + (x[1:] - x[:-1]).clamp(min=0).sum(0)
            self.last = x[-1].clone()
        else:
            events = x.sum(0)
        self.total = self.total + (events * fan_out.to(x.device, x.dtype)).flatten(1).sum(1)


class GraphNetwork(SteppedReadoutNetwork, WeightProducts):
    """A graph of blocks fed by a spike encoder, read out from its last block.

    ``forward`` returns the read-out scores ``(batch, classes)`` and the spike counts
    ``(batch, n)`` of every spiking neurons block except the label layer (n: its neurons,
    flattened), as :class:`snnexp.modules.time_stepped.TimeSteppedNetwork` does. ``generator``
    feeds random encoders during training; without one, a fixed seed is used. ``fuse``
    (:data:`~snnexp.graph.fusion.FUSION_LEVELS`) says what of a cycle's step runs as one
    computation: ``"all"`` (default) the independent neurons blocks of a stage as one
    population and the delayed linear blocks between them as one matrix product (equal to
    rounding to ``"none"``), ``"neurons"`` only the neurons blocks (bitwise the results of
    ``"none"``), ``"none"`` every block by itself.
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
        fuse: str = "all",
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
        self._plans: dict[tuple[str, tuple[str, ...]], _CyclePlan] = {}
        self.synaptic_events: dict[str, SynapticEvents] | None = None
        self.count_onsets = False
        self._fan_outs: dict[str, torch.Tensor] = {}
        self.threshold_paths = threshold_paths(spec)
        self.prospective_sources = {path.source for path in self.threshold_paths.values()}

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
        generator = self.input_generator(device)
        run = _Run(
            states={n: b.initial_state(batch, device, dtype) for n, b in self.blocks.items()},
            history={
                source: torch.zeros(
                    (delay, batch, *self._shape(source)), device=device, dtype=dtype
                )
                for source, delay in self.delays.items()
            },
            record=record,
            batch=batch,
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

    def _fan_out(self, name: str) -> torch.Tensor:
        """The fan-out of each input of weighted block ``name`` (computed once)."""
        if name not in self._fan_outs:
            self._fan_outs[name] = self.blocks[name].fan_out(self.spec.blocks[name].in_shape)
        return self._fan_outs[name]

    def _run_block(self, name: str, x: Sequence_, run: _Run) -> Sequence_:
        """A block outside any cycle, over the whole chunk."""
        block = self.blocks[name]
        if self.synaptic_events is not None and not isinstance(x, Constant):
            fan_out = getattr(block, "fan_out", None)
            if fan_out is not None:
                if name not in self.synaptic_events:
                    self.synaptic_events[name] = SynapticEvents(self.count_onsets)
                self.synaptic_events[name].add(x, self._fan_out(name))
        if isinstance(x, Constant) and not (block.stateful or block.timed):
            return Constant(block.apply(x.value))
        sequence = current = _tensor(x, run.length)
        path = self.threshold_paths.get(name)
        if path is not None:
            missing = missing_input(run.prospective[path.source], path, self.blocks)
            current = raised_threshold_current(sequence, missing, run.missing.get(name))
            run.missing[name] = missing[-1]
        y, run.states[name], trace = block.run(current, run.states[name], run.first, run.record)
        if name in self.prospective_sources:
            run.prospective[name], run.fired[name] = prospective(sequence, y, run.fired.get(name))
        run.add_traces(name, trace)
        return y

    def _run_cycle(self, component: list[str], run: _Run) -> None:
        """The blocks of a cycle, one step at a time, stage by stage (:mod:`.fusion`): the
        fusable neurons blocks of a stage as one population (with ``fuse="all"`` also the
        linear blocks feeding it), the others one by one; their inputs from outside the cycle
        are gathered for the whole chunk first."""
        plan = self._cycle_plan(component)
        members = set(component)
        chunks: dict[str, list[torch.Tensor]] = {}
        inside: dict[str, list[Edge]] = {}
        for name in component:
            edges = self.spec.blocks[name].inputs
            chunks[name] = [
                _tensor(self._edge(e, run), run.length) for e in edges if e.source not in members
            ]
            chunks[name] += self._absorbed_biases(name, plan.absorbed, run)
            inside[name] = [
                e for e in edges if e.source in members and e.source not in plan.absorbed
            ]
        params = {
            name: self.blocks[name].neurons.step_params()
            for name in component
            if isinstance(self.blocks[name], Neurons)
        }
        groups = {
            unit: _Group(
                unit,
                self.spec,
                self.blocks,
                params,
                run.states,
                self._joined(plan, unit),
                self.fixed_partition,
            )
            for unit in plan.groups
        }
        joined = {
            unit: group.join_chunks([chunks[name] for name in unit], run.length)
            for unit, group in groups.items()
            if not any(inside[name] for name in unit)
        }
        outside = {
            name: [chunk.unbind() for chunk in chunks[name]]
            for name in component
            if not any(name in unit for unit in joined)
        }
        steps: dict[str, list[torch.Tensor]] = {name: [] for name in component}

        def delayed(source: str, t: int, delay: int) -> torch.Tensor:
            k = t - delay
            return steps[source][k] if k >= 0 else run.history[source][k]

        def step_input(name: str, t: int) -> torch.Tensor | None:
            parts = [part[t] for part in outside[name]]
            parts += [delayed(edge.source, t, edge.delay) for edge in inside[name]]
            if not parts:
                return None
            x = parts[0]
            for part in parts[1:]:
                x = x + part
            return x

        for t in range(run.length):
            for stage in plan.stages:
                for unit in stage:
                    group = groups.get(unit)
                    if group is not None:
                        rest = (
                            joined[unit][t]
                            if unit in joined
                            else group.join([step_input(name, t) for name in unit])
                        )
                        for name, (y, trace) in zip(
                            unit, group.step(rest, run.record, delayed, t), strict=True
                        ):
                            steps[name].append(y)
                            run.add_traces(name, {key: value[None] for key, value in trace.items()})
                        continue
                    for name in unit:
                        x = step_input(name, t)
                        assert x is not None, "a block of a cycle reads at least one input"
                        steps[name].append(self._cycle_step(name, x, params, run, t))
        for group in groups.values():
            run.states |= group.states()
        for name in component:
            if name not in plan.absorbed:
                run.outputs[name] = torch.stack(steps[name])

    def _cycle_plan(self, component: list[str]) -> _CyclePlan:
        """How a cycle runs at this network's fusion level (:data:`FUSION_LEVELS`), worked
        out once per level."""
        key = (self.fuse, tuple(component))
        if key in self._plans:
            return self._plans[key]
        if self.fuse not in FUSION_LEVELS:
            raise ValueError(f"fuse must be one of {', '.join(FUSION_LEVELS)}, got {self.fuse!r}")
        stages = [stage_units(stage, self.blocks) for stage in cycle_stages(self.spec, component)]
        if self.fuse == "none":
            stages = [[[name] for unit in stage for name in unit] for stage in stages]
        plan = _CyclePlan([[tuple(unit) for unit in stage] for stage in stages])
        plan.groups = [unit for stage in plan.stages for unit in stage if len(unit) > 1]
        if self.fuse == "all":
            fused = {name for unit in plan.groups for name in unit}
            plan.absorbed = absorbed_linears(self.spec, self.blocks, component, fused)
            for unit in plan.groups:
                synapses = JoinedSynapses.of(self.spec, unit, plan.absorbed)
                if synapses is not None:
                    plan.synapses[unit] = synapses
            plan.stages = [
                [unit for unit in stage if not set(unit) <= plan.absorbed] for stage in plan.stages
            ]
        self._plans[key] = plan
        return plan

    def _joined(
        self, plan: _CyclePlan, unit: tuple[str, ...]
    ) -> tuple[JoinedSynapses, torch.Tensor] | None:
        """The absorbed synapses of a fused population with their joined weight (built from
        the blocks' parameters for each chunk, so that gradients reach them)."""
        synapses = plan.synapses.get(unit)
        if synapses is None:
            return None
        sizes = [self.blocks[name].neurons.size for name in unit]
        return synapses, synapses.weight(self.spec, self.blocks, sizes)

    def _absorbed_biases(self, name: str, absorbed: set[str], run: _Run) -> list[torch.Tensor]:
        """The constant and timed bias currents that the absorbed linear blocks read by
        ``name`` add, as ``(length, batch, features)`` parts of its input."""
        parts = []
        for edge in self.spec.blocks[name].inputs:
            if edge.source not in absorbed:
                continue
            linear = self.blocks[edge.source]
            shape = (run.length, run.batch, linear.weight.shape[1])
            if linear.bias is not None:
                parts.append(linear.bias.expand(shape))
            if linear.timed:
                parts.append(linear.bias_current(run.first, run.length).expand(shape))
        return parts

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
    """Fusable neurons blocks of one stage of a cycle, stepped as one population over a chunk,
    with the joined synapses of the linear blocks absorbed into it, if any
    (:mod:`snnexp.graph.fusion`), multiplied in a fixed partition with ``fixed_partition``
    (:mod:`snnexp.functional.fixed_partition`)."""

    def __init__(
        self,
        names: Sequence[str],
        spec: GraphSpec,
        blocks: Mapping[str, Block],
        params: Mapping[str, StepCoefficients],
        states: Mapping[str, Any],
        joined: tuple[JoinedSynapses, torch.Tensor] | None = None,
        fixed_partition: bool = False,
    ) -> None:
        self.names = list(names)
        self.fixed_partition = fixed_partition
        self.shapes = [spec.blocks[name].out_shape for name in names]
        self.sizes = [blocks[name].neurons.size for name in names]
        self.surrogate = blocks[names[0]].neurons.surrogate
        self.params = join_coefficients([params[name] for name in names], self.sizes)
        self.state = join_states([states[name] for name in names])
        self.synapses, self.weight = joined if joined is not None else (None, None)
        self.own_sources = self.synapses is not None and self.synapses.sources == [
            (name, 1) for name in self.names
        ]

    def join(self, xs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """The members' inputs of a step ``(batch, *shape)`` (None: none but absorbed
        synapses) as one ``(batch, neurons)`` current."""
        batch = self.state.v.shape[0]
        return torch.cat(
            [
                self.state.v.new_zeros(batch, n) if x is None else x.reshape(batch, -1)
                for x, n in zip(xs, self.sizes, strict=True)
            ],
            dim=1,
        )

    def join_chunks(
        self, chunks: Sequence[Sequence[torch.Tensor]], length: int
    ) -> Sequence[torch.Tensor]:
        """The members' inputs of a whole chunk (each a list of ``(length, batch, *shape)``
        parts) joined once: the ``(batch, neurons)`` current of every step."""
        batch = self.state.v.shape[0]
        parts = [
            _total(list(parts), length).reshape(length, batch, n)
            if parts
            else self.state.v.new_zeros(length, batch, n)
            for parts, n in zip(chunks, self.sizes, strict=True)
        ]
        return torch.cat(parts, dim=2).unbind()

    def step(
        self,
        current: torch.Tensor,
        record: bool,
        delayed: Callable[[str, int, int], torch.Tensor],
        t: int,
    ) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        """One step ``t`` of every block from the joined current of its other inputs and the
        outputs ``delayed(source, t, delay)`` of the absorbed synapses' sources: its output
        (shaped as its input) and, with ``record``, its membrane (and threshold) traces, as
        :meth:`~snnexp.graph.blocks.Neurons.step` gives."""
        batch = self.state.v.shape[0]
        if self.synapses is not None:
            if self.own_sources:
                sources = self.state.z
            else:
                sources = torch.cat(
                    [delayed(s, t, d).flatten(1) for s, d in self.synapses.sources], dim=1
                )
            if self.fixed_partition:
                current = current + fixed_partition.linear(sources, self.weight)
            else:
                current = torch.addmm(current, sources, self.weight)
        self.state = neuron_step(current, self.state, self.params, self.surrogate)
        outputs = self.state.z.split(self.sizes, dim=1)
        traces: list[dict[str, torch.Tensor]] = [{} for _ in self.names]
        if record:
            for trace, v in zip(traces, self.state.v.split(self.sizes, dim=1), strict=True):
                trace["membrane"] = v
            if self.state.a is not None:
                theta = threshold_of(self.state, self.params).split(self.sizes, dim=1)
                for trace, value in zip(traces, theta, strict=True):
                    trace["threshold"] = value
        return [
            (z.reshape(batch, *shape), trace)
            for z, shape, trace in zip(outputs, self.shapes, traces, strict=True)
        ]

    def states(self) -> dict[str, Any]:
        """The joined state handed back to its blocks."""
        return dict(zip(self.names, split_state(self.state, self.sizes), strict=True))


@dataclass
class _CyclePlan:
    """How a cycle steps: its stages as units (a tuple of blocks that step together, or one
    block), the units that are fused populations, the linear blocks absorbed into them and
    each population's joined synapses."""

    stages: list[list[tuple[str, ...]]]
    groups: list[tuple[str, ...]] = field(default_factory=list)
    absorbed: set[str] = field(default_factory=set)
    synapses: dict[tuple[str, ...], JoinedSynapses] = field(default_factory=dict)


@dataclass
class _Run:
    """What one simulation carries: block states, the last outputs of every source read with
    a delay, and the current chunk (its first step, length, block outputs and traces)."""

    states: dict[str, Any]
    history: dict[str, torch.Tensor]
    record: bool
    batch: int
    first: int = 0
    length: int = 0
    outputs: dict[str, Sequence_] = field(default_factory=dict)
    traces: dict[str, dict[str, list[torch.Tensor]]] = field(default_factory=dict)
    past_and_now: dict[str, torch.Tensor] = field(default_factory=dict)
    prospective: dict[str, torch.Tensor] = field(default_factory=dict)
    """The chunk's prospective spikes of the neurons blocks that raise dynamic thresholds."""
    fired: dict[str, torch.Tensor] = field(default_factory=dict)
    missing: dict[str, torch.Tensor] = field(default_factory=dict)
    """The last step's raise of each dynamic threshold (M_{t-1} of the next chunk)."""

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
