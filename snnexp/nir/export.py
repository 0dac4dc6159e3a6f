"""A trained time-stepped network as a NIR graph (``snnexp nir export``).

Blocks map one to one where NIR has the primitive: ``linear`` -> Affine (Linear without bias),
``conv2d`` -> Conv2d, ``avg_pool2d`` / ``sum_pool2d`` -> AvgPool2d / SumPool2d, ``flatten`` ->
Flatten, ``delay`` blocks and delayed edges -> Delay (``steps x dt``), ``neurons`` -> LIF
(leaky; or CubaLIF with tau_syn = dt, ``leaky_as``), CubaLIF (synaptic), IF (iaf) or, not
spiking, LI; a recurrent population becomes the subgraph ``input -> lif -> w_rec -> lif ->
output``. Time constants follow :mod:`snnexp.nir.conventions`. A stack of ``model.layer_sizes``
is written as the same primitives (``layer_K_weights``, ``layer_K``). An exact first-spike
network (ET or DT) becomes CubaLIF populations that fire once, its bias spikes extra input
channels (:func:`_first_spike`; metadata ``bias_spike_times``).

What NIR cannot express is refused with a message naming it: reset by subtraction, adaptive
and dynamic thresholds, refractory steps, max pooling, bias spikes of time-stepped layers,
the alpha and lapicque models, ANNs. With ``approximate``, reset by subtraction, adaptive
thresholds and refractory steps map to the nearest primitive (reset to zero, the base
threshold, no refractory period), listed in the graph's metadata ``approximations``. The
graph's input is the encoded spike train, its output the label layer's spikes (or membrane
potential). The nir package's type check does not know grouped convolutions, so graphs with
one are written without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np
import torch

from snnexp import __version__
from snnexp.errors import SnnexpError
from snnexp.graph.network import GraphNetwork
from snnexp.graph.spec import INPUT, BlockSpec
from snnexp.modules.first_spike import FirstSpikeNetwork
from snnexp.modules.lsnn import LSNNNetwork
from snnexp.modules.neurons import SpikingNeurons
from snnexp.modules.time_stepped import TimeSteppedNetwork
from snnexp.nir.conventions import SNNTORCH_DT, exact_step_gain, nir_tau

OUTPUT = "output"
FIRE_ONCE_INHIBITION = 1e6
"""The self-inhibition of exported first-spike neurons: a spike lowers the neuron's own
synaptic current by this much, so that it stays silent for the rest of a sample, as snnexp's
neurons fire once (NIR has no such neuron; v_reset alone would let it fire again)."""


class NirExportError(SnnexpError):
    """The network holds something NIR cannot express (and ``--approximate`` does not map)."""


@dataclass
class _Graph:
    """The nodes and edges written so far, the approximations made and the names that stand
    for blocks written as nothing (dropout: its input)."""

    dt: float
    approximate: bool
    leaky_as: str = "lif"
    nodes: dict[str, Any] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    approximations: list[str] = field(default_factory=list)
    aliases: dict[str, list[str]] = field(default_factory=dict)

    def connect(self, source: str, target: str) -> None:
        for name in self.aliases.get(source, [source]):
            self.edges.append((name, target))

    def delayed(self, source: str, target: str, steps: int, shape: Sequence[int]) -> None:
        """An edge ``source -> target``, through a Delay node of ``steps`` steps if > 0."""
        if steps == 0:
            self.connect(source, target)
            return
        name = f"{source}_to_{target}_delay"
        self.nodes[name] = self.delay(shape, steps)
        self.connect(source, name)
        self.edges.append((name, target))

    def delay(self, shape: Sequence[int], steps: int) -> Any:
        """A Delay node of ``steps`` steps for a population of ``shape``."""
        return nir.Delay(np.full(tuple(shape), steps * self.dt))

    def unsupported(self, where: str, feature: str, nearest: str | None) -> None:
        """Refuse ``feature`` of ``where``, or (``approximate`` and a ``nearest`` exists) note
        that it was mapped to ``nearest``."""
        if self.approximate and nearest is not None:
            self.approximations.append(f"{where}: {feature} written as {nearest}")
            return
        hint = f"; --approximate writes it as {nearest}" if nearest else ""
        raise NirExportError(f"{where} has {feature}, which NIR cannot express{hint}")


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def _per_neuron(value: torch.Tensor | float, shape: Sequence[int]) -> np.ndarray:
    """A scalar or per-neuron parameter as an array of the population's shape (float64)."""
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    return np.broadcast_to(array.astype(np.float64).reshape(-1), (math.prod(shape),)).reshape(
        tuple(shape)
    )


def _neuron_node(
    neurons: SpikingNeurons, shape: Sequence[int], spiking: bool, where: str, graph: _Graph
) -> Any:
    """The NIR node of a population (module docstring)."""
    model = neurons.model
    if model in ("alpha", "lapicque"):
        graph.unsupported(where, f"the {model} neuron model", None)
    if model == "alif" and bool((neurons.adapt_strength != 0).any()):
        graph.unsupported(where, "adaptive thresholds (alif)", "LIF with the base threshold")
    if neurons.refractory_steps > 0:
        graph.unsupported(where, f"{neurons.refractory_steps} refractory steps", "none")
    if spiking and neurons.reset != "zero":
        graph.unsupported(where, f"reset: {neurons.reset}", "reset to zero (v_reset = 0)")
    params = neurons.step_params()
    zeros = np.zeros(tuple(shape))
    threshold = np.full(tuple(shape), float(neurons.threshold))
    if model == "iaf":
        return nir.IF(r=np.full(tuple(shape), 1.0 / graph.dt), v_threshold=threshold, v_reset=zeros)
    tau = nir_tau(_per_neuron(params.mem_decay, shape), graph.dt)
    if not spiking:
        return nir.LI(tau=tau, r=tau / graph.dt, v_leak=zeros)
    if model == "synaptic" or graph.leaky_as == "cubalif":
        if model == "synaptic":
            tau_syn = nir_tau(_per_neuron(params.syn_decay, shape), graph.dt)
        else:
            tau_syn = np.full(tuple(shape), graph.dt)
        return nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau,
            r=tau / graph.dt,
            v_leak=zeros,
            v_threshold=threshold,
            v_reset=zeros,
            w_in=tau_syn / graph.dt,
        )
    return nir.LIF(tau=tau, r=tau / graph.dt, v_leak=zeros, v_threshold=threshold, v_reset=zeros)


def _population(
    name: str,
    where: str,
    neurons: SpikingNeurons,
    shape: Sequence[int],
    spiking: bool,
    recurrent_weight: torch.Tensor | None,
    graph: _Graph,
) -> None:
    """The node ``name`` of a population (``where``: how messages name it); with recurrent
    weights R (current += z_{t-1} R) the subgraph input -> lif -> w_rec -> lif -> output."""
    node = _neuron_node(neurons, shape, spiking, where, graph)
    if recurrent_weight is None:
        graph.nodes[name] = node
        return
    graph.nodes[name] = _recurrent(node, _array(recurrent_weight).T, shape)


def _recurrent(population: Any, weight: np.ndarray, shape: Sequence[int]) -> Any:
    """The subgraph input -> lif -> w_rec -> lif -> output of a population with recurrent
    weights ``weight`` (NIR's (out, in))."""
    size = np.array(list(shape))
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": size}),
            "lif": population,
            "w_rec": nir.Linear(weight=weight),
            "output": nir.Output(output_type={"output": size}),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )


def _block_node(spec: BlockSpec, module: torch.nn.Module, graph: _Graph) -> Any | None:
    """The NIR node of a block other than neurons (None: written as nothing)."""
    where = f"block {spec.name!r}"
    kind, p = spec.type, spec.params
    if kind == "linear":
        if p["bias_times"]:
            graph.unsupported(where, "bias spikes (bias_times)", None)
        weight = _array(module.weight).T
        if module.bias is None:
            return nir.Linear(weight=weight)
        return nir.Affine(weight=weight, bias=_array(module.bias))
    if kind == "conv2d":
        bias = module.bias if module.bias is not None else torch.zeros(len(module.weight))
        return nir.Conv2d(
            input_shape=tuple(spec.in_shape[1:]),
            weight=_array(module.weight),
            stride=module.stride,
            padding=module.padding,
            dilation=1,
            groups=module.groups,
            bias=_array(bias),
        )
    if kind in ("avg_pool2d", "sum_pool2d"):
        pool = nir.AvgPool2d if kind == "avg_pool2d" else nir.SumPool2d
        stride = p["stride"] or p["kernel"]
        return pool(
            kernel_size=np.array([p["kernel"]] * 2),
            stride=np.array([stride] * 2),
            padding=np.array([0, 0]),
        )
    if kind == "flatten":
        return _flatten(spec.in_shape)
    if kind in ("dropout", "sum"):
        return None
    graph.unsupported(where, f"type {kind}", None)
    return None


def _flatten(in_shape: Sequence[int]) -> Any:
    """A Flatten node of inputs of ``in_shape`` (NIR's dimensions leave the batch out)."""
    return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1)


def _graph_network(model: GraphNetwork, graph: _Graph) -> str:
    """Write the blocks of a graph network; returns the name of its label block."""
    for name, spec in model.spec.blocks.items():
        module, where, entry = model.blocks[name], f"block {name!r}", name
        if spec.type == "delay":
            (edge,) = spec.inputs
            graph.nodes[name] = graph.delay(spec.in_shape, edge.delay)
            graph.connect(edge.source, name)
            continue
        if spec.type == "neurons":
            if spec.params.get("dynamic_threshold"):
                graph.unsupported(where, "a dynamic threshold", None)
            _population(
                name,
                where,
                module.neurons,
                spec.out_shape,
                module.spiking,
                module.recurrent_weight,
                graph,
            )
        else:
            node = _block_node(spec, module, graph)
            if node is None:
                if any(edge.delay for edge in spec.inputs):
                    graph.unsupported(where, "a delayed input of a pass-through", None)
                graph.aliases[name] = [
                    alias
                    for edge in spec.inputs
                    for alias in graph.aliases.get(edge.source, [edge.source])
                ]
                continue
            graph.nodes[name] = node
            if spec.type == "linear" and len(spec.in_shape) > 1:
                entry = f"{name}_flatten"
                graph.nodes[entry] = _flatten(spec.in_shape)
                graph.edges.append((entry, name))
        for edge in spec.inputs:
            graph.delayed(edge.source, entry, edge.delay, _shape_of(model, edge.source))
    return model.spec.output


def _shape_of(model: GraphNetwork, name: str) -> tuple[int, ...]:
    if name == INPUT:
        return tuple(model.spec.input_shape)
    return tuple(model.spec.blocks[name].out_shape)


def _stack(model: TimeSteppedNetwork, graph: _Graph) -> str:
    """Write a stack of layers as weights -> (delay) -> population per layer; returns the name
    of the label layer."""
    source = INPUT
    for k, layer in enumerate(model.layers):
        if layer.bias_times.numel():
            graph.unsupported(f"layer {k}", "bias spikes (model.bias_times)", None)
        weights, name = f"layer_{k}_weights", f"layer_{k}"
        graph.nodes[weights] = nir.Linear(weight=_array(layer.weight[: layer.n_inputs]).T)
        graph.connect(source, weights)
        _population(
            name,
            f"layer {k}",
            layer.neurons,
            (layer.n_outputs,),
            layer.spiking,
            layer.recurrent_weight,
            graph,
        )
        graph.delayed(weights, name, layer.delay, (layer.n_outputs,))
        source = name
    return source


def _first_spike(model: FirstSpikeNetwork, graph: _Graph) -> tuple[str, list[float]]:
    """Write an exact first-spike network as CubaLIF populations, one NIR second per unit of
    model time. The continuous neuron tau_syn dI/dt = -I (I jumps by w at an input spike),
    tau_mem C du/dt = -(u - E_L) + I / g_L is written with the time constants matched to the
    step dt as for time-stepped networks (tau' = dt / (1 - exp(-dt / tau)): an Euler step of
    dt decays exactly), w_in = tau_syn' / dt (an input spike of 1 in a step raises I by its
    weight), r = gain / g_L with :func:`~snnexp.nir.conventions.exact_step_gain` (an Euler
    step of dt then raises v as the exact solution does over the step, not by the current at
    its start held for the whole step), v_leak = v_reset = E_L, and each neuron inhibiting
    itself after its spike (FIRE_ONCE_INHIBITION, a recurrent subgraph: snnexp's neurons fire
    once). Bias spikes become input channels after the data's (their times returned in order);
    each later layer reads its own through a Linear from the input. Returns the label
    population's name and the bias spike times."""
    n_data = model.layers[0].n_inputs
    bias_times = [float(t) for layer in model.layers for t in layer.bias_times]
    n_channels = n_data + len(bias_times)
    channel = n_data
    source = INPUT
    for k, layer in enumerate(model.layers):
        weight = _array(layer.weight).T
        n_bias = layer.bias_times.numel()
        bias = np.zeros((layer.n_outputs, n_channels), dtype=weight.dtype)
        bias[:, channel : channel + n_bias] = weight[:, layer.n_inputs :]
        channel += n_bias
        name = f"layer_{k}"
        if k == 0:
            bias[:, :n_data] = weight[:, :n_data]
            graph.nodes[f"{name}_weights"] = nir.Linear(weight=bias)
            graph.edges.append((INPUT, f"{name}_weights"))
        else:
            graph.nodes[f"{name}_weights"] = nir.Linear(weight=weight[:, : layer.n_inputs])
            graph.edges.append((source, f"{name}_weights"))
            if n_bias:
                graph.nodes[f"{name}_bias"] = nir.Linear(weight=bias)
                graph.edges += [(INPUT, f"{name}_bias"), (f"{name}_bias", name)]
        graph.edges.append((f"{name}_weights", name))
        p, shape = layer.params, (layer.n_outputs,)
        tau_syn = nir_tau(np.full(shape, math.exp(-graph.dt / p.tau_syn)), graph.dt)
        population = nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=nir_tau(np.full(shape, math.exp(-graph.dt / p.tau_mem)), graph.dt),
            r=np.full(shape, exact_step_gain(p.tau_syn, p.tau_mem, graph.dt) / p.g_leak),
            v_leak=np.full(shape, p.leak),
            v_threshold=np.full(shape, p.threshold),
            v_reset=np.full(shape, p.leak),
            w_in=tau_syn / graph.dt,
        )
        inhibition = -FIRE_ONCE_INHIBITION * np.eye(layer.n_outputs)
        graph.nodes[name] = _recurrent(population, inhibition, shape)
        source = name
    return source, bias_times


def export_network(
    model: TimeSteppedNetwork | GraphNetwork | FirstSpikeNetwork,
    model_dt: float,
    dt: float = SNNTORCH_DT,
    approximate: bool = False,
    leaky_as: str = "lif",
) -> tuple[Any, list[str]]:
    """The NIR graph of a time-stepped or exact first-spike network, written for simulators of
    step ``dt`` (a time-stepped network's steps being ``model_dt`` long in snnexp), and the
    approximations made (only with ``approximate``). ``leaky_as="cubalif"`` writes leaky
    populations as CubaLIF with tau_syn = dt (an input current that lasts one step: the same
    dynamics), for readers that ignore the r of a LIF (norse)."""
    if isinstance(model, LSNNNetwork):
        raise NirExportError(
            "an LSNN network (model.neuron.type: lsnn) has no NIR counterpart: NIR has no node "
            "for its per-synapse delays, its spike from the previous step's membrane or its "
            "filtered window read-out; export a time-stepped run (e.g. model.neuron.type: alif "
            "with model.recurrent) instead"
        )
    if not isinstance(model, (TimeSteppedNetwork, GraphNetwork, FirstSpikeNetwork)):
        raise NirExportError(
            f"{type(model).__name__} has no spiking neurons for NIR; convert an ANN first "
            "(snnexp convert RUN --code ...) and export the converted run"
        )
    graph = _Graph(dt, approximate, leaky_as)
    metadata: dict[str, Any] = {}
    if isinstance(model, FirstSpikeNetwork):
        label, bias_times = _first_spike(model, graph)
        n_inputs = [model.layers[0].n_inputs + len(bias_times)]
        metadata["bias_spike_times"] = np.array(bias_times)
        metadata["time_unit"] = "the config's (first-spike network: continuous time)"
    elif isinstance(model, GraphNetwork):
        n_inputs = list(model.spec.input_shape)
        label = _graph_network(model, graph)
    else:
        n_inputs = [model.layers[0].n_inputs]
        label = _stack(model, graph)
    graph.nodes[INPUT] = nir.Input(input_type={"input": np.array(n_inputs)})
    graph.nodes[OUTPUT] = nir.Output(output_type={"output": np.array(_label_shape(model))})
    graph.connect(label, OUTPUT)
    metadata |= {
        "source": f"snnexp {__version__}",
        "dt": dt,
        "snnexp_dt": model_dt,
        "approximations": "; ".join(graph.approximations) or "none",
    }
    grouped = any(isinstance(node, nir.Conv2d) and node.groups > 1 for node in graph.nodes.values())
    network = nir.NIRGraph(
        nodes=graph.nodes, edges=graph.edges, metadata=metadata, type_check=not grouped
    )
    return network, graph.approximations


def _label_shape(model: TimeSteppedNetwork | GraphNetwork | FirstSpikeNetwork) -> list[int]:
    if isinstance(model, GraphNetwork):
        return list(model.spec.blocks[model.spec.output].out_shape)
    return [model.layers[-1].n_outputs]
