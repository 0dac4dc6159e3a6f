"""``model.blocks`` read and checked: block parameters, edges with delays, shapes, the schedule.

A config lists blocks; each names its ``type`` (see :data:`snnexp.graph.blocks.BLOCK_TYPES`),
optionally a ``name`` (default ``<type>_<index>``) and ``inputs``: block names, ``input`` (the
encoded data) or ``{block: NAME, delay: K}`` for the output of NAME K steps earlier. Without
``inputs`` a block reads the block listed before it (the first block reads ``input``), so a plain
list is a sequential network. A block with several inputs gets their sum (all of one shape).

An input may come from any block, the block itself or a later one; an edge of delay 0 means
"this step", so the edges of delay 0 must not form a cycle. The schedule groups the blocks into
the strongly connected components of the graph, in an order in which every component comes
after those it reads from: a component of one block without a self-loop runs a whole chunk of
steps in one call; the blocks of a cycle run step by step, in the order of their undelayed
edges. Where every edge of a cycle is delayed (the form in which all blocks of a step depend
only on the previous step), that order is arbitrary and the blocks of a step are independent.

:func:`parse_blocks` returns the :class:`GraphSpec`, or the list of every problem found, each
naming the block (``model.blocks[3] ('conv2')``) and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from snnexp.choices import FIRST_SPIKE_BLOCK
from snnexp.graph.blocks import BLOCK_TYPES, REQUIRED, Shape
from snnexp.graph.parameters import PARAMETER_CHECKS, non_negative_int, positive_int

INPUT = "input"
"""The name of the encoded data in ``inputs``."""
KEYS = ("type", "name", "inputs")
"""Keys every block takes besides its parameters."""


@dataclass(frozen=True)
class Edge:
    """The output of ``source`` (a block name or ``input``) ``delay`` steps earlier."""

    source: str
    delay: int = 0


@dataclass
class BlockSpec:
    """One block of the graph, its parameters complete."""

    name: str
    type: str
    params: dict[str, Any]
    inputs: list[Edge]
    in_shape: Shape = ()
    out_shape: Shape = ()


@dataclass
class GraphSpec:
    """A checked graph: its blocks by name (in config order), the shape of its input, the output
    block, and the schedule (components in execution order, blocks within each in step order)."""

    input_shape: Shape
    blocks: dict[str, BlockSpec]
    output: str
    schedule: list[list[str]] = field(default_factory=list)

    def cyclic(self, component: Sequence[str]) -> bool:
        """Whether a component must run step by step (several blocks, or a self-loop)."""
        only = component[0]
        return len(component) > 1 or any(e.source == only for e in self.blocks[only].inputs)

    def max_delays(self) -> dict[str, int]:
        """For each source read with a delay, the longest delay it is read with."""
        longest: dict[str, int] = {}
        for block in self.blocks.values():
            for edge in block.inputs:
                if edge.delay:
                    longest[edge.source] = max(longest.get(edge.source, 0), edge.delay)
        return longest


class GraphError(ValueError):
    """``model.blocks`` is not a valid graph; ``problems`` lists every message."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def parse_blocks(
    entries: Sequence[Any],
    input_shape: Shape,
    neuron_defaults: Mapping[str, Any],
    n_classes: int | None = None,
    path: str = "model.blocks",
) -> GraphSpec:
    """Read and check the block list of a config (see the module docstring).

    ``neuron_defaults`` fills the parameters of ``neurons`` blocks that a block leaves out;
    ``n_classes``, where given, is the size the last block (the label layer) must have. Raises
    :class:`GraphError` with every problem found.
    """
    problems: list[str] = []
    if not entries:
        raise GraphError(
            [
                f"{path}: needs at least one block, e.g. [{{type: linear, features: 10}}"
                ", {type: neurons}]"
            ]
        )
    blocks: dict[str, BlockSpec] = {}
    labels: dict[str, str] = {}
    previous = INPUT
    for index, entry in enumerate(entries):
        where = f"{path}[{index}]"
        block = _parse_block(entry, index, previous, neuron_defaults, where, problems)
        if block is None:
            continue
        label = f"{where} ('{block.name}')"
        if block.name in blocks or block.name == INPUT:
            taken = "the name of the encoded data" if block.name == INPUT else "already taken"
            problems.append(f"{label}: the name '{block.name}' is {taken}; give it another name")
        else:
            blocks[block.name] = block
            labels[block.name] = label
        previous = block.name
    if problems:
        raise GraphError(problems)
    _check_exact_chain(blocks, labels, problems)
    _check_sources(blocks, labels, problems)
    if not problems:
        _check_undelayed_cycles(blocks, labels, path, problems)
    if not problems:
        _infer_shapes(blocks, labels, input_shape, problems)
    output = list(blocks)[-1]
    if not problems:
        _check_output(blocks[output], labels[output], n_classes, problems)
        _check_reaches_output(blocks, labels, output, problems)
    if problems:
        raise GraphError(problems)
    graph = GraphSpec(input_shape, blocks, output)
    graph.schedule = _schedule(blocks)
    for component in graph.schedule:
        if graph.cyclic(component):
            for name in component:
                if not BLOCK_TYPES[blocks[name].type].in_cycles:
                    problems.append(
                        f"{labels[name]}: a {blocks[name].type} block keeps a state over the "
                        "steps and cannot be part of a cycle; move it out of the cycle"
                    )
    if problems:
        raise GraphError(problems)
    return graph


def _close(word: str, choices: Sequence[str]) -> str:
    found = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{found[0]}'?" if found else f"; valid: {', '.join(choices)}"


def _parse_block(
    entry: Any,
    index: int,
    previous: str,
    neuron_defaults: Mapping[str, Any],
    where: str,
    problems: list[str],
) -> BlockSpec | None:
    """One entry of the list, or None after recording why it cannot be read."""
    if not isinstance(entry, Mapping):
        problems.append(
            f"{where}: expected a block (a mapping with a type, e.g. {{type: linear, "
            f"features: 10}}), got {entry!r}"
        )
        return None
    kind = entry.get("type")
    if kind not in BLOCK_TYPES:
        shown = "no type" if kind is None else f"unknown block type {kind!r}"
        hint = _close(str(kind), list(BLOCK_TYPES)) if kind is not None else ""
        available = f"; block types: {', '.join(BLOCK_TYPES)}" if "did you" not in hint else hint
        problems.append(f"{where}: {shown}{available}")
        return None
    name = entry.get("name", f"{kind}_{index}")
    label = f"{where} ('{name}')"
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}: name must be a non-empty string, got {name!r}")
        return None
    block_type = BLOCK_TYPES[kind]
    params: dict[str, Any] = {}
    for key, default in block_type.parameters.items():
        if key in entry:
            params[key] = entry[key]
        elif kind == "neurons" and key in neuron_defaults:
            params[key] = neuron_defaults[key]
        elif default is REQUIRED:
            problems.append(f"{label}: a {kind} block needs '{key}'")
        else:
            params[key] = default
    for key in entry:
        if key not in block_type.parameters and key not in KEYS:
            valid = [*KEYS, *block_type.parameters]
            problems.append(f"{label}: unknown key '{key}' for a {kind} block{_close(key, valid)}")
    for key, value in params.items():
        ok, text = block_type.checks.get(key) or PARAMETER_CHECKS[key]
        if not ok(value):
            problems.append(f"{label}: {key} must be {text}, got {value!r}")
    inputs = _parse_inputs(entry.get("inputs", [previous]), label, problems)
    if kind == "delay" and positive_int(params.get("steps")):
        inputs = [Edge(edge.source, edge.delay + params["steps"]) for edge in inputs]
    return BlockSpec(name, kind, params, inputs)


def _parse_inputs(raw: Any, label: str, problems: list[str]) -> list[Edge]:
    """``inputs``: a name, or a list of names and {block: NAME, delay: K} mappings."""
    items = [raw] if isinstance(raw, (str, Mapping)) else raw
    form = "write inputs: [NAME, ...] or [{block: NAME, delay: K}]"
    if not isinstance(items, list) or not items:
        problems.append(f"{label}: inputs must be a non-empty list of block names; {form}")
        return []
    edges = []
    for item in items:
        if isinstance(item, str):
            edges.append(Edge(item))
            continue
        if not isinstance(item, Mapping) or not isinstance(item.get("block"), str):
            problems.append(f"{label}: cannot read the input {item!r}; {form}")
            continue
        extra = set(item) - {"block", "delay"}
        delay = item.get("delay", 0)
        if extra:
            problems.append(
                f"{label}: unknown key(s) {', '.join(map(str, sorted(extra)))} in the input "
                f"{item!r}; an input has block and delay"
            )
        elif not non_negative_int(delay):
            problems.append(
                f"{label}: the delay of input '{item['block']}' must be a whole number of "
                f"steps >= 0, got {delay!r}"
            )
        else:
            edges.append(Edge(item["block"], delay))
    return edges


def _check_sources(
    blocks: Mapping[str, BlockSpec], labels: Mapping[str, str], problems: list[str]
) -> None:
    """Every input names a block or the encoded data."""
    names = [INPUT, *blocks]
    for block in blocks.values():
        for edge in block.inputs:
            if edge.source not in names:
                problems.append(
                    f"{labels[block.name]}: input '{edge.source}' is not a block"
                    f"{_close(edge.source, names)}"
                )


def _check_undelayed_cycles(
    blocks: Mapping[str, BlockSpec], labels: Mapping[str, str], path: str, problems: list[str]
) -> None:
    """The edges of delay 0 form no cycle (a block cannot need its own output of this step)."""
    order = _topological(list(blocks), _undelayed_sources(blocks))
    if len(order) == len(blocks):
        return
    cycle = _find_cycle([name for name in blocks if name not in order], _undelayed_sources(blocks))
    chain = " -> ".join([*cycle, cycle[0]])
    problems.append(
        f"{path}: the blocks {chain} form a cycle without delay (each needs the other's output "
        f"of the same step); give one of these inputs a delay of at least 1 step, e.g. in "
        f"{labels[cycle[0]]}: inputs: [{{block: {cycle[-1]}, delay: 1}}]"
    )


def _undelayed_sources(blocks: Mapping[str, BlockSpec]) -> dict[str, list[str]]:
    return {
        name: [e.source for e in b.inputs if e.delay == 0 and e.source != INPUT]
        for name, b in blocks.items()
    }


def _topological(names: Sequence[str], sources: Mapping[str, Sequence[str]]) -> list[str]:
    """The names in an order where every source comes first (ties in list order); names on a
    cycle are left out."""
    done: list[str] = []
    placed: set[str] = set()
    progress = True
    while progress:
        progress = False
        for name in names:
            if name not in placed and all(s in placed for s in sources[name] if s in sources):
                done.append(name)
                placed.add(name)
                progress = True
    return done


def _find_cycle(names: Sequence[str], sources: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle among ``names`` (each has a source among them), in the direction of flow,
    starting at its block listed first."""
    left = set(names)
    walk = [names[0]]
    while True:
        step = next(s for s in sources[walk[-1]] if s in left)
        if step in walk:
            cycle = walk[walk.index(step) :][::-1]
            first = min(range(len(cycle)), key=lambda k: names.index(cycle[k]))
            return cycle[first:] + cycle[:first]
        walk.append(step)


def _infer_shapes(
    blocks: Mapping[str, BlockSpec],
    labels: Mapping[str, str],
    input_shape: Shape,
    problems: list[str],
) -> None:
    """Propagate shapes from the input; report blocks the input never reaches and inputs of
    different shapes."""
    shapes: dict[str, Shape] = {INPUT: input_shape}
    changed = True
    while changed:
        changed = False
        for block in blocks.values():
            if block.name in shapes:
                continue
            known = [shapes[e.source] for e in block.inputs if e.source in shapes]
            if not known:
                continue
            block.in_shape = known[0]
            try:
                block.out_shape = BLOCK_TYPES[block.type].shape(known[0], block.params)
            except ValueError as err:
                problems.append(f"{labels[block.name]}: {err}")
                return
            shapes[block.name] = block.out_shape
            changed = True
    for block in blocks.values():
        if block.name not in shapes:
            problems.append(
                f"{labels[block.name]}: no path leads to it from 'input', so it never gets data; "
                "connect one of its inputs to 'input' or to a block that does"
            )
            continue
        found = {e.source: shapes[e.source] for e in block.inputs}
        if len(set(found.values())) > 1:
            listed = ", ".join(f"'{s}' {shape}" for s, shape in found.items())
            problems.append(
                f"{labels[block.name]}: its inputs are summed and need one shape, got {listed}; "
                "add a linear, conv2d, pooling or flatten block to match them"
            )


def _check_exact_chain(
    blocks: Mapping[str, BlockSpec], labels: Mapping[str, str], problems: list[str]
) -> None:
    """A graph with exact first-spike blocks is a dense sequential chain of them only: the
    exact math is feed-forward, from the spike times of one layer to the next."""
    exact = [name for name, block in blocks.items() if BLOCK_TYPES[block.type].exact]
    if not exact:
        return
    previous = INPUT
    kind = FIRST_SPIKE_BLOCK
    for name, block in blocks.items():
        if not BLOCK_TYPES[block.type].exact:
            problems.append(
                f"{labels[name]}: a graph of {kind} blocks holds only {kind} blocks (exact "
                f"first-spike layers); {block.type} blocks are for learning.rule bptt"
            )
        elif block.inputs != [Edge(previous)]:
            problems.append(
                f"{labels[name]}: {kind} blocks form a sequential graph (each reads the block "
                f"before it, '{previous}', without delay); remove its inputs"
            )
        previous = name


def _check_output(block: BlockSpec, label: str, n_classes: int | None, problems: list[str]) -> None:
    """The last block is the label layer: neurons (or first-spike neurons), one per class."""
    if BLOCK_TYPES[block.type].exact:
        if n_classes is not None and block.out_shape != (n_classes,):
            problems.append(
                f"{label}: the label layer has {block.out_shape[0]} neurons but the dataset has "
                f"{n_classes} classes; set features: {n_classes}"
            )
    elif block.type != "neurons":
        problems.append(
            f"{label}: the last block is the label layer and must be a neurons block (spiking, "
            f"or spiking: false for a membrane read-out), not a {block.type} block"
        )
    elif n_classes is not None and block.out_shape != (n_classes,):
        problems.append(
            f"{label}: the label layer has shape {block.out_shape} but the dataset has "
            f"{n_classes} classes; end with a linear block of features: {n_classes} and a "
            "neurons block"
        )


def _check_reaches_output(
    blocks: Mapping[str, BlockSpec], labels: Mapping[str, str], output: str, problems: list[str]
) -> None:
    """Every block feeds the label layer (directly or not); others would be wasted work."""
    reached = {output}
    frontier = [output]
    while frontier:
        for edge in blocks[frontier.pop()].inputs:
            if edge.source in blocks and edge.source not in reached:
                reached.add(edge.source)
                frontier.append(edge.source)
    for name in blocks:
        if name not in reached:
            problems.append(
                f"{labels[name]}: its output never reaches the label layer '{output}'; remove "
                "the block or make it an input of a later one"
            )


def _schedule(blocks: Mapping[str, BlockSpec]) -> list[list[str]]:
    """Strongly connected components in execution order, blocks in step order within each."""
    names = list(blocks)
    all_sources = {n: [e.source for e in b.inputs if e.source != INPUT] for n, b in blocks.items()}
    component_of: dict[str, int] = {}
    components = _strongly_connected(names, all_sources)
    for index, members in enumerate(components):
        for name in members:
            component_of[name] = index
    component_sources = {
        index: sorted({component_of[s] for n in members for s in all_sources[n]} - {index})
        for index, members in enumerate(components)
    }
    order = _topological(list(range(len(components))), component_sources)  # type: ignore[arg-type]
    undelayed = _undelayed_sources(blocks)
    schedule = []
    for index in order:
        members = [n for n in names if n in components[index]]
        inner = {n: [s for s in undelayed[n] if s in members] for n in members}
        schedule.append(_topological(members, inner))
    return schedule


def _strongly_connected(
    names: Sequence[str], sources: Mapping[str, Sequence[str]]
) -> list[set[str]]:
    """Tarjan's algorithm over the edges source -> block."""
    targets: dict[str, list[str]] = {n: [] for n in names}
    for name in names:
        for source in sources[name]:
            targets[source].append(name)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in targets[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.add(member)
                if member == node:
                    break
            found.append(members)

    for name in names:
        if name not in index:
            visit(name)
    return found
