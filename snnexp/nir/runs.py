"""NIR files and snnexp runs: the graph of a savepoint, and a config whose network is read from
a graph (``snnexp nir``; optional dependency ``nir``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnexp.config import ConfigError, ExperimentConfig, config_from_dict, config_to_dict
from snnexp.errors import SnnexpError
from snnexp.graph.build import input_shape
from snnexp.nir.conventions import SNNTORCH_DT
from snnexp.nir.reader import ImportedNetwork, NirImportError, import_graph, read_graph

STACK_KEYS = ("layer_sizes", "recurrent", "delays", "bias_times", "weight_mean", "weight_std")
"""model keys of a stack, which a network read from NIR (a graph of blocks) leaves out."""


def require_nir() -> None:
    """A clear error where the optional dependency is missing."""
    try:
        import nir  # noqa: F401
    except ImportError as error:
        raise SnnexpError(
            "NIR support needs the nir package: pip install 'snnexp[interop]'"
        ) from error


def graph_dt(graph: Any, dt: float | None) -> float:
    """The simulation step to read ``graph`` with: ``dt`` if given, else the graph's metadata
    ``dt`` (written by snnexp), else snnTorch's 1e-4."""
    if dt is not None:
        return dt
    stored = graph.metadata.get("dt") if graph.metadata else None
    return float(np.asarray(stored)) if stored is not None else SNNTORCH_DT


def config_with_graph(
    cfg: ExperimentConfig, graph: Any, dt: float | None, source: str
) -> tuple[ExperimentConfig, ImportedNetwork]:
    """``cfg`` (its dataset, model.dt, encoder, read-out and training) with the network of
    ``graph`` as ``model.blocks``, and the graph's weights."""
    if cfg.learning.rule != "bptt":
        raise ConfigError(
            f"learning.rule: a network read from NIR is time-stepped; set bptt (got "
            f"{cfg.learning.rule!r})"
        )
    imported = import_graph(graph, cfg.model.dt, graph_dt(graph, dt))
    expected = list(input_shape(cfg))
    if imported.input_shape != expected:
        raise NirImportError(
            f"the NIR graph's input has shape {imported.input_shape}, the config's encoded input "
            f"{expected} "
            "(dataset and dataset.encoding): pick the config the network was made for"
        )
    data = config_to_dict(cfg)
    for key in STACK_KEYS:
        data["model"].pop(key, None)
    data["model"]["blocks"] = imported.blocks
    data["model"]["nir"] = source
    return config_from_dict(data, source=f"{source} with its config"), imported


def load_graph_weights(model: torch.nn.Module, imported: ImportedNetwork) -> None:
    """Put the weights (and per-neuron time constants) of a NIR graph into the network built
    from its blocks."""
    state = model.state_dict()
    for key, value in imported.weights.items():
        if key not in state or state[key].shape != value.shape:
            built = tuple(state[key].shape) if key in state else "missing"
            raise NirImportError(
                f"{key} of the NIR graph does not fit the network built from it "
                f"({tuple(value.shape)} vs {built})"
            )
        state[key] = value.to(state[key].dtype)
    model.load_state_dict(state)


def read_network_file(path: Path) -> Any:
    """The NIR graph at ``path`` (the optional dependency checked first)."""
    require_nir()
    return read_graph(path)
