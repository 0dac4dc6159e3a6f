"""``config.model.blocks`` -> a :class:`~snnexp.graph.network.GraphNetwork` with initialised
weights (drawn from the config-seeded generator, block by block in config order)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from snnexp.data.encoding import SpikeEncoder
from snnexp.dtypes import DTYPES
from snnexp.functional.surrogate import Surrogate
from snnexp.graph.blocks import BLOCK_TYPES, NEURON_PARAMETERS, Block, BuildContext
from snnexp.graph.network import GraphNetwork
from snnexp.graph.spec import GraphSpec, parse_blocks

if TYPE_CHECKING:
    from snnexp.config import ExperimentConfig, NeuronConfig


def neuron_defaults(neuron: NeuronConfig) -> dict[str, Any]:
    """The parameters of a ``neurons`` block that ``model.neuron`` supplies."""
    values = vars(neuron) | {"model": neuron.type}
    return {key: values[key] for key in NEURON_PARAMETERS}


def input_shape(cfg: ExperimentConfig) -> tuple[int, ...]:
    """The shape of one step of input: (channels, height, width) for image datasets encoded
    per pixel (time-stepped and analog rules), else (inputs,)."""
    from snnexp.config import DATASET_SHAPES, IMAGE_SHAPES
    from snnexp.rules import LEARNING_RULES

    dataset = cfg.dataset
    if not LEARNING_RULES[cfg.learning.rule].scores:
        return (DATASET_SHAPES[dataset.name][0],)
    if dataset.encoding.type == "threshold_crossing":
        return (2 * dataset.encoding.thresholds,)
    if dataset.name in IMAGE_SHAPES:
        return IMAGE_SHAPES[dataset.name]
    return (DATASET_SHAPES[dataset.name][0],)


def graph_spec(cfg: ExperimentConfig) -> GraphSpec:
    """The checked graph of ``cfg.model.blocks`` (raises GraphError with every problem)."""
    from snnexp.config import DATASET_SHAPES

    return parse_blocks(
        cfg.model.blocks,
        input_shape(cfg),
        neuron_defaults(cfg.model.neuron),
        n_classes=DATASET_SHAPES[cfg.dataset.name][1],
    )


def build_blocks(
    cfg: ExperimentConfig, generator: torch.Generator | None = None
) -> tuple[GraphSpec, dict[str, Block]]:
    """The checked graph of ``cfg`` and its block modules, their weights drawn from
    ``generator`` block by block in config order."""
    model = cfg.model
    spec = graph_spec(cfg)
    dtype = DTYPES[model.dtype]
    surrogate = Surrogate(**vars(cfg.learning.surrogate))
    blocks = {}
    for name, block in spec.blocks.items():
        context = BuildContext(block.in_shape, dtype, model.dt, surrogate)
        module = BLOCK_TYPES[block.type].build(block.params, context)
        reset = getattr(module, "reset_parameters", None)
        if reset is not None:
            reset(generator)
        blocks[name] = module
    return spec, blocks


def build_graph_network(
    cfg: ExperimentConfig, steps: int, generator: torch.Generator | None = None
) -> GraphNetwork:
    """The graph network of ``cfg`` simulated for ``steps`` steps of ``model.dt``."""
    model = cfg.model
    spec, blocks = build_blocks(cfg, generator)
    return GraphNetwork(
        spec,
        blocks,
        SpikeEncoder(dt=model.dt, **vars(cfg.dataset.encoding)),
        steps=steps,
        readout=model.readout,
        readout_steps=model.readout_steps,
        xi=cfg.learning.loss.xi,
    )
