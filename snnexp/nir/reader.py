"""A NIR graph as a snnexp graph of blocks with its weights (``snnexp nir import``,
``model.nir``).

Each node becomes the block of the same primitive (the inverse of :mod:`snnexp.nir.export`):
Affine / Linear -> ``linear``, Conv2d -> ``conv2d``, AvgPool2d / SumPool2d -> ``avg_pool2d`` /
``sum_pool2d``, Flatten -> ``flatten``, LIF / CubaLIF / IF -> ``neurons`` (leaky / synaptic /
iaf, reset to zero; a CubaLIF with tau_syn = dt is leaky), LI -> a non-spiking ``neurons``
block; a Delay node becomes the delay of
the edges out of it (``round(delay / dt)`` steps); a recurrent population (the subgraph
``lif -> w_rec -> lif``, or the same cycle written flat, as snnTorch does) becomes a
``recurrent`` neurons block. Time constants follow :mod:`snnexp.nir.conventions` for a step of
``dt``; what snnexp cannot hold (a leak potential, a reset to another value than 0, thresholds
that differ between neurons, input scalings other than the convention's) is refused with a
message naming the node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnexp.errors import SnnexpError
from snnexp.graph.spec import INPUT
from snnexp.nir.conventions import SNNTORCH_DT, snnexp_tau, step_decay

RELATIVE_TOLERANCE = 1e-6
"""How far a parameter may stray from the value snnexp needs (rounding of the writer)."""


class NirImportError(SnnexpError):
    """The NIR graph holds something snnexp cannot simulate."""


@dataclass
class ImportedNetwork:
    """The blocks (``model.blocks`` entries), the weights (a GraphNetwork's state dict
    entries, float64) and the input shape of a NIR graph."""

    blocks: list[dict[str, Any]]
    weights: dict[str, torch.Tensor]
    input_shape: list[int]


def read_graph(path: Path) -> Any:
    """The NIR graph stored at ``path``; a clear error when it is missing or not NIR. Its types
    are not checked here (the nir package's check does not know grouped convolutions); the
    network built from it checks every shape."""
    import nir

    if not path.is_file():
        raise NirImportError(f"{path}: no such NIR file")
    try:
        return nir.read(path, type_check=False)
    except (OSError, KeyError, ValueError) as error:
        raise NirImportError(f"{path} is not a readable NIR graph ({error})") from error


def _name(raw: str) -> str:
    """A block name for a NIR node name (letters, digits and underscores)."""
    name = re.sub(r"\W", "_", raw)
    return name if name and not name[0].isdigit() else f"n_{name}"


def _uniform(values: Any, what: str, where: str) -> float:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.allclose(array, array[0], rtol=RELATIVE_TOLERANCE, atol=0.0):
        raise NirImportError(f"{where}: {what} differs between neurons; snnexp has one per block")
    return float(array[0])


def _near(values: Any, expected: Any, what: str, where: str, convention: str, dt: float) -> None:
    if not np.allclose(values, expected, rtol=RELATIVE_TOLERANCE, atol=1e-12):
        raise NirImportError(
            f"{where}: {what} = {np.asarray(values).reshape(-1)[0]:g} does not follow the "
            f"convention {convention} for a step dt = {dt:g}; check --dt"
        )


@dataclass
class _Reader:
    """The blocks and weights read so far, for simulation steps ``dt`` (NIR) and ``model_dt``
    (snnexp)."""

    dt: float
    model_dt: float
    blocks: list[dict[str, Any]] = field(default_factory=list)
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def time_constant(self, block: dict[str, Any], key: str, tau: Any, where: str) -> None:
        """snnexp's ``key`` (tau_mem / tau_syn) of a NIR time constant, one per block (to 15
        digits: the writer's rounding, 1.0000000000000002, taken off) or per neuron
        (``per_neuron_tau``)."""
        decay = step_decay(tau, self.dt)
        if not (np.all(decay > 0) and np.all(decay < 1)):
            raise NirImportError(
                f"{where}: {key} needs 0 < 1 - dt / tau < 1 with dt = {self.dt:g} (--dt); got "
                f"tau down to {np.min(tau):g}"
            )
        values = snnexp_tau(decay, self.model_dt).reshape(-1)
        if np.allclose(values, values[0], rtol=0.0, atol=0.0):
            block[key] = float(f"{values[0]:.15g}")
            return
        block["per_neuron_tau"] = True
        block[key] = float(values.mean())
        self.weights[f"blocks.{block['name']}.neurons.{key}"] = torch.from_numpy(values.copy())

    def neurons(self, name: str, node: Any, recurrent: Any | None) -> dict[str, Any]:
        """The neurons block of a LIF / CubaLIF / IF / LI node."""
        import nir

        where = f"node {name!r} ({type(node).__name__})"
        block: dict[str, Any] = {"name": _name(name), "type": "neurons", "refractory_steps": 0}
        dt = self.dt
        if isinstance(node, nir.IF):
            _near(node.r, 1.0 / dt, "r", where, "r = 1 / dt", dt)
            block |= {"model": "iaf", "reset": "zero"}
        else:
            tau = node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau
            if np.any(np.asarray(node.v_leak) != 0):
                raise NirImportError(f"{where}: v_leak must be 0 (snnexp's neurons rest at 0)")
            _near(node.r, np.asarray(tau) / dt, "r", where, "r = tau / dt", dt)
            self.time_constant(block, "tau_mem", tau, where)
            block["model"] = "leaky"
            if isinstance(node, nir.CubaLIF):
                tau_syn = np.asarray(node.tau_syn)
                _near(node.w_in, tau_syn / dt, "w_in", where, "w_in = tau_syn / dt", dt)
                if not np.allclose(tau_syn, dt, rtol=RELATIVE_TOLERANCE, atol=0.0):
                    self.time_constant(block, "tau_syn", tau_syn, where)
                    block["model"] = "synaptic"
        if isinstance(node, nir.LI):
            block["spiking"] = False
        else:
            reset = getattr(node, "v_reset", None)
            if reset is not None and np.any(np.asarray(reset) != 0):
                raise NirImportError(f"{where}: v_reset must be 0 (snnexp resets to zero)")
            block["threshold"] = _uniform(node.v_threshold, "v_threshold", where)
            block["reset"] = "zero"
        if recurrent is not None:
            if np.any(np.asarray(getattr(recurrent, "bias", 0.0)) != 0):
                raise NirImportError(
                    f"{where}: its recurrent synapse has a bias, which snnexp's recurrent "
                    "weights do not hold; write it as Linear (or move the bias to the input)"
                )
            block["recurrent"] = True
            weight = np.asarray(recurrent.weight, dtype=np.float64).T
            self.weights[f"blocks.{block['name']}.recurrent_weight"] = torch.from_numpy(
                weight.copy()
            )
        return block

    def block(self, name: str, node: Any) -> dict[str, Any]:
        """The block of a synapse, pooling or flatten node."""
        import nir

        where = f"node {name!r} ({type(node).__name__})"
        key = f"blocks.{_name(name)}"
        if isinstance(node, (nir.Affine, nir.Linear)):
            weight = np.asarray(node.weight, dtype=np.float64)
            self.weights[f"{key}.weight"] = torch.from_numpy(weight.T.copy())
            bias = isinstance(node, nir.Affine) and node.bias is not None
            if bias:
                self.weights[f"{key}.bias"] = torch.from_numpy(
                    np.asarray(node.bias, dtype=np.float64).copy()
                )
            return {"type": "linear", "features": weight.shape[0], "bias": bias}
        if isinstance(node, nir.Conv2d):
            stride, padding = np.atleast_1d(node.stride), np.atleast_1d(node.padding)
            kernel = node.weight.shape[-2:]
            if kernel[0] != kernel[1] or len(set(stride)) != 1 or len(set(padding)) != 1:
                raise NirImportError(
                    f"{where}: snnexp's conv2d is square (kernel, stride, padding)"
                )
            if np.any(np.atleast_1d(node.dilation) != 1):
                raise NirImportError(f"{where}: dilation must be 1")
            self.weights[f"{key}.weight"] = torch.from_numpy(np.asarray(node.weight, np.float64))
            self.weights[f"{key}.bias"] = torch.from_numpy(np.asarray(node.bias, np.float64))
            return {
                "type": "conv2d",
                "channels": node.weight.shape[0],
                "kernel": int(kernel[0]),
                "stride": int(stride[0]),
                "padding": int(padding[0]),
                "groups": int(node.groups),
                "bias": True,
            }
        if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            kernel, stride = np.atleast_1d(node.kernel_size), np.atleast_1d(node.stride)
            if len(set(kernel)) != 1 or len(set(stride)) != 1 or np.any(node.padding != 0):
                raise NirImportError(f"{where}: snnexp pools square windows without padding")
            kind = "avg_pool2d" if isinstance(node, nir.AvgPool2d) else "sum_pool2d"
            return {"type": kind, "kernel": int(kernel[0]), "stride": int(stride[0])}
        if isinstance(node, nir.Flatten):
            return {"type": "flatten"}
        raise NirImportError(f"{where}: snnexp has no block for this NIR primitive")


def _is_population(node: Any) -> bool:
    """Whether ``node`` is a NIR neuron population snnexp reads."""
    import nir

    return isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF, nir.LI))


def _recurrent_parts(graph: Any, name: str) -> tuple[Any, Any] | None:
    """(population, recurrent weights) of a subgraph input -> lif -> w_rec -> lif -> output."""
    import nir

    if not isinstance(graph.nodes[name], nir.NIRGraph):
        return None
    inner = graph.nodes[name]
    populations = [n for n, node in inner.nodes.items() if _is_population(node)]
    synapses = [n for n, node in inner.nodes.items() if isinstance(node, (nir.Linear, nir.Affine))]
    if len(populations) != 1 or len(synapses) != 1:
        raise NirImportError(
            f"node {name!r}: a subgraph must be one recurrent population "
            "(input -> lif -> w_rec -> lif -> output)"
        )
    return inner.nodes[populations[0]], inner.nodes[synapses[0]]


def import_graph(graph: Any, model_dt: float, dt: float = SNNTORCH_DT) -> ImportedNetwork:
    """The blocks and weights of ``graph`` read for a simulation step ``dt`` (the NIR side) and
    ``model_dt`` (snnexp's step)."""
    import nir

    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NirImportError("the NIR graph must have exactly one Input and one Output node")
    sources: dict[str, list[str]] = {n: [] for n in graph.nodes}
    targets: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for source, target in graph.edges:
        sources[target].append(source)
        targets[source].append(target)
    flat_recurrent = {
        w: s[0]
        for w, s in sources.items()
        if isinstance(graph.nodes[w], (nir.Linear, nir.Affine))
        and len(s) == 1
        and targets[w] == s
        and _is_population(graph.nodes[s[0]])
    }
    recurrent_of = {population: w for w, population in flat_recurrent.items()}
    reader = _Reader(dt, model_dt)
    names = {inputs[0]: INPUT}
    delays: dict[str, tuple[str, int]] = {}
    order = [n for n in _topological(graph, sources, flat_recurrent, inputs[0]) if n != outputs[0]]
    for name in order:
        node = graph.nodes[name]
        if isinstance(node, nir.Delay):
            (source,) = sources[name]
            steps = _uniform(node.delay, "delay", f"node {name!r}") / dt
            if abs(steps - round(steps)) > RELATIVE_TOLERANCE * max(1.0, steps):
                raise NirImportError(f"node {name!r}: delay is not a whole number of steps dt")
            earlier, before = delays.get(source, (source, 0))
            delays[name] = (earlier, before + round(steps))
            continue
        if name in flat_recurrent:
            continue
        subgraph = _recurrent_parts(graph, name)
        recurrent_weights = recurrent_of.get(name)
        if subgraph is not None:
            block = reader.neurons(name, subgraph[0], subgraph[1])
        elif _is_population(node):
            recurrent = graph.nodes[recurrent_weights] if recurrent_weights else None
            block = reader.neurons(name, node, recurrent)
        else:
            block = {"name": _name(name), **reader.block(name, node)}
        edges = []
        for source in sources[name]:
            if source == recurrent_weights:
                continue
            earlier, steps = delays.get(source, (source, 0))
            edges.append({"block": names[earlier], "delay": steps} if steps else names[earlier])
        block["inputs"] = edges
        names[name] = block["name"]
        reader.blocks.append(block)
    (last,) = sources[outputs[0]]
    if delays.get(last) or names.get(last) != reader.blocks[-1]["name"]:
        raise NirImportError(
            "the Output node must follow the last population without a delay (snnexp reads the "
            "label layer from the last block)"
        )
    shape = np.asarray(graph.nodes[inputs[0]].input_type["input"]).reshape(-1)
    return ImportedNetwork(reader.blocks, reader.weights, [int(n) for n in shape])


def _topological(
    graph: Any, sources: dict[str, list[str]], flat_recurrent: dict[str, str], first: str
) -> list[str]:
    """The nodes in an order where each follows its inputs (recurrent synapses left out)."""
    pending = {
        n: [s for s in sources[n] if s not in flat_recurrent] for n in graph.nodes if n != first
    }
    order, done = [], {first}
    while pending:
        ready = [n for n, s in pending.items() if all(x in done for x in s)]
        if not ready:
            raise NirImportError(
                f"the NIR graph has a cycle through {', '.join(sorted(pending))} that is not a "
                "recurrent population (lif -> w_rec -> lif)"
            )
        for n in ready:
            order.append(n)
            done.add(n)
            del pending[n]
    return order
