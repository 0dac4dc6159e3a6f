"""snnexp: config-driven experiments with spiking neural networks.

The public Python API, importable from ``snnexp`` directly (loaded on first use, so that
``import snnexp`` and the command line start without importing torch)::

    from snnexp import FirstSpikeNetwork, Leaky, load_config, build_network
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "yin_yang": "snnexp.data",
    "latency_encode": "snnexp.data",
    "load_split": "snnexp.data",
    "FirstSpikeLayer": "snnexp.modules.first_spike",
    "FirstSpikeNetwork": "snnexp.modules.first_spike",
    "NeuronParams": "snnexp.functional.neuron",
    "first_spike_et": "snnexp.functional.event.et",
    "first_spike_dt": "snnexp.functional.event.dt",
    "Leaky": "snnexp.modules.neurons",
    "Synaptic": "snnexp.modules.neurons",
    "Alif": "snnexp.modules.neurons",
    "Alpha": "snnexp.modules.neurons",
    "Lapicque": "snnexp.modules.neurons",
    "SpikingLayer": "snnexp.modules.stepped_layer",
    "TimeSteppedNetwork": "snnexp.modules.time_stepped",
    "GraphNetwork": "snnexp.graph",
    "parse_blocks": "snnexp.graph",
    "load_config": "snnexp.config",
    "config_from_dict": "snnexp.config",
    "build_network": "snnexp.run.build",
    "Trainer": "snnexp.run.trainer",
    "load_saved_network": "snnexp.run.inference",
}
"""Public name -> the module that defines it."""

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'snnexp' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
