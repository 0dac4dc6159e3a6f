"""The config format of the published first-spike code (Goeltz, Kriener et al. 2021): a
``dataset`` name plus ``neuron_params``, ``network_layout`` and ``training_params``, mapped onto
the new schema; its problems are reported under the legacy key names."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from snnexp.config.keys import set_at
from snnexp.config.problems import Problems, counted, show, unknown_key
from snnexp.config.schema import FIRST_SPIKE_TAU_RATIOS, NeuronConfig
from snnexp.config.values import Mismatch, convert, to_float

logger = logging.getLogger(__name__)

LEGACY_SECTIONS = ("neuron_params", "network_layout", "training_params")
_LEGACY_TOP_KEYS = ("dataset", *LEGACY_SECTIONS)
# legacy key path -> new key path, for keys that only change their name
_LEGACY_RENAMES = {
    "dataset": "dataset.name",
    "neuron_params.tau_syn": "model.neuron.tau_syn",
    "neuron_params.tau_mem": "model.neuron.tau_mem",
    "neuron_params.g_leak": "model.neuron.g_leak",
    "neuron_params.leak": "model.neuron.leak",
    "neuron_params.threshold": "model.neuron.threshold",
    "network_layout.n_inputs": "model.n_inputs",
    "network_layout.layer_sizes": "model.layer_sizes",
    "network_layout.weight_means": "model.weight_mean",
    "network_layout.weight_stdevs": "model.weight_std",
    "training_params.epoch_number": "training.epochs",
    "training_params.epoch_snapshots": "training.savepoints",
    "training_params.batch_size": "training.batch_size",
    "training_params.batch_size_eval": "training.batch_size_eval",
    "training_params.learning_rate": "learning.optimizer.lr",
    "training_params.optimizer": "learning.optimizer.type",
    "training_params.momentum": "learning.optimizer.momentum",
    "training_params.lr_scheduler": "learning.lr_scheduler",
    "training_params.max_dw_norm": "training.max_dw_norm",
    "training_params.max_num_missing_spikes": "training.weight_bumping.max_missing",
    "training_params.weight_bumping_value": "training.weight_bumping.value",
    "training_params.weight_bumping_exp": "training.weight_bumping.exponential",
    "training_params.weight_bumping_targeted": "training.weight_bumping.targeted",
    "training_params.numpy_seed": "training.seeds.numpy",
    "training_params.torch_seed": "training.seeds.torch",
    "training_params.xi": "learning.loss.xi",
    "training_params.alpha": "learning.loss.alpha",
    "training_params.beta": "learning.loss.beta",
    "training_params.resolution": "model.dt",
    "training_params.sim_time": "model.sim_time",
}
LEGACY_LABELS = {new: old for old, new in _LEGACY_RENAMES.items()} | {
    "model.bias_times": "network_layout.bias_times",
    "model.simulator": "training_params.use_forward_integrator",
    "training.device": "training_params.enforce_cpu",
    "training.input_noise": "training_params.training_noise",
    "training.input_noise.std": "training_params.training_noise.std_dev",
}
# read together with the layer sizes, after the sections
_LEGACY_LAYOUT_KEYS = (
    "network_layout.bias_times",
    "network_layout.n_biases",
    "network_layout.n_layers",
)
_LEGACY_IGNORED = ("training_params.print_step_percent",)
_HICANNX_MESSAGE = (
    "use_hicannx: true selects the BrainScaleS-2 (HICANN-X) neuromorphic chip, which snnexp "
    "does not drive; set it to false to simulate in software"
)

_LegacyHandler = Callable[[Any, dict, Problems], None]


def _legacy_switch(path: str, target: str, when_true: str, when_false: str) -> _LegacyHandler:
    """A handler for a legacy true/false key that selects one of two new values."""

    def handle(value: Any, out: dict, problems: Problems) -> None:
        if value is not None and not isinstance(value, bool):
            problems.add(path, f"expected true or false, got {show(value)}")
            return
        set_at(out, target, when_true if value else when_false)

    return handle


def _legacy_unsupported(path: str, feature: str) -> _LegacyHandler:
    """A handler for a legacy feature snnexp lacks: fine when off (false/null), else an error."""

    def handle(value: Any, out: dict, problems: Problems) -> None:
        if value in (None, False):
            logger.info("legacy key %s is off; ignored", path)
        else:
            problems.add(path, f"{feature} is not supported by snnexp; set it to false")

    return handle


def _legacy_hicannx(value: Any, out: dict, problems: Problems) -> None:
    """use_hicannx selects neuromorphic hardware, which snnexp cannot run."""
    if value is True:
        problems.note(f"training_params.{_HICANNX_MESSAGE}")
    elif value is not None and value is not False:
        problems.add("training_params.use_hicannx", f"expected true or false, got {show(value)}")


def _legacy_noise(value: Any, out: dict, problems: Problems) -> None:
    """training_noise: false (no noise) or {mean, std_dev}."""
    path = "training_params.training_noise"
    if value is None or value is False:
        set_at(out, "training.input_noise", {"mean": 0.0, "std": 0.0})
        return
    if not isinstance(value, Mapping):
        problems.add(path, f"expected false or {{mean: ..., std_dev: ...}}, got {show(value)}")
        return
    noise = {}
    for key, item in value.items():
        if key in ("mean", "std_dev"):
            noise["std" if key == "std_dev" else "mean"] = item
        else:
            shown = f"{path}.{key}"
            problems.note(unknown_key(shown, str(key), ("mean", "std_dev"), f"in '{path}'"))
    set_at(out, "training.input_noise", noise)


_LEGACY_HANDLERS: dict[str, _LegacyHandler] = {
    "training_params.training_noise": _legacy_noise,
    "training_params.enforce_cpu": _legacy_switch(
        "training_params.enforce_cpu", "training.device", "cpu", "auto"
    ),
    "training_params.use_forward_integrator": _legacy_switch(
        "training_params.use_forward_integrator", "model.simulator", "stepped", "exact"
    ),
    "training_params.use_hicannx": _legacy_hicannx,
    "training_params.rounding_precision": _legacy_unsupported(
        "training_params.rounding_precision", "weight rounding"
    ),
    "training_params.clip_weights_max": _legacy_unsupported(
        "training_params.clip_weights_max", "weight clipping"
    ),
}


def _legacy_known_keys(section: str) -> list[str]:
    """The keys a legacy section may hold."""
    paths = [*_LEGACY_RENAMES, *_LEGACY_HANDLERS, *_LEGACY_LAYOUT_KEYS, *_LEGACY_IGNORED]
    return [p.split(".", 1)[1] for p in paths if p.startswith(section + ".")]


def legacy_to_new(data: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    """A legacy config rewritten as a new-format mapping (legacy-only problems recorded)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "dataset":
            set_at(out, "dataset.name", value)
        elif key in LEGACY_SECTIONS:
            _legacy_section(key, value, out, problems)
        else:
            where = "at the top level of a legacy config"
            problems.note(unknown_key(str(key), str(key), _LEGACY_TOP_KEYS, where))
    layout = data.get("network_layout")
    if isinstance(layout, Mapping):
        _legacy_layout(layout, out, problems)
    neuron = data.get("neuron_params")
    if isinstance(neuron, Mapping):
        _legacy_neuron(neuron, out)
    return out


def _legacy_section(section: str, params: Any, out: dict, problems: Problems) -> None:
    """Map one legacy section's keys, except those read with the layer sizes."""
    if params is None:
        return
    if not isinstance(params, Mapping):
        problems.add(
            section, f"expected a section (a mapping of keys to values), got {show(params)}"
        )
        return
    for key, value in params.items():
        path = f"{section}.{key}"
        if path in _LEGACY_RENAMES:
            set_at(out, _LEGACY_RENAMES[path], value)
        elif path in _LEGACY_HANDLERS:
            _LEGACY_HANDLERS[path](value, out, problems)
        elif path in _LEGACY_IGNORED:
            logger.info("legacy key %s has no meaning in snnexp; ignored", path)
        elif path not in _LEGACY_LAYOUT_KEYS:
            valid = _legacy_known_keys(section)
            problems.note(unknown_key(path, str(key), valid, f"in '{section}'"))


def _legacy_layout(layout: Mapping[str, Any], out: dict, problems: Problems) -> None:
    """Check n_layers and n_biases against layer_sizes and build the per-layer bias times."""
    sizes = layout.get("layer_sizes")
    n_layers = layout.get("n_layers")
    if n_layers is not None and isinstance(sizes, list) and n_layers != len(sizes):
        problems.note(
            f"network_layout.n_layers is {n_layers!r} but network_layout.layer_sizes has "
            f"{len(sizes)} layers; make them agree"
        )
    if "bias_times" in layout or "n_biases" in layout:
        set_at(out, "model.bias_times", _legacy_bias_times(layout, problems))


def _legacy_bias_times(layout: Mapping[str, Any], problems: Problems) -> Any:
    """Layer i gets the first n_biases[i] bias times (all of them when n_biases is absent)."""
    times = layout.get("bias_times", [])
    counts = layout.get("n_biases")
    if counts is None or not isinstance(times, list):
        return times  # the new-format reader checks what is left
    try:
        counts = convert(list[int], counts)
    except Mismatch as err:
        problems.add(
            f"network_layout.n_biases{err.where}",
            f"expected {err.expected}, got {show(err.value)}",
        )
        return times
    sizes = layout.get("layer_sizes")
    if isinstance(sizes, list) and len(counts) != len(sizes):
        problems.add(
            "network_layout.n_biases",
            f"has {counted(len(counts), 'entry', 'entries')} but network_layout.layer_sizes "
            f"has {counted(len(sizes), 'layer', 'layers')}",
        )
    nested = bool(times) and all(isinstance(item, list) for item in times)
    per_layer = times if nested else [times] * len(counts)
    result = []
    for index, (count, layer_times) in enumerate(zip(counts, per_layer, strict=False)):
        if not 0 <= count <= len(layer_times):
            problems.add(
                f"network_layout.n_biases[{index}]",
                f"is {count} but network_layout.bias_times holds "
                f"{counted(len(layer_times), 'time', 'times')} for layer {index}; "
                f"use 0..{len(layer_times)}",
            )
        result.append(layer_times[: max(count, 0)])
    return result


def _legacy_neuron(neuron: Mapping[str, Any], out: dict) -> None:
    """tau_mem defaults to tau_syn; the rule follows from their ratio (1: ET, 2: DT)."""
    if "tau_mem" not in neuron and "tau_syn" in neuron:
        set_at(out, "model.neuron.tau_mem", neuron["tau_syn"])
    try:
        tau_syn = to_float(neuron.get("tau_syn", NeuronConfig.tau_syn))
        tau_mem = to_float(neuron.get("tau_mem", neuron.get("tau_syn", NeuronConfig.tau_mem)))
    except Mismatch:
        return  # reported by the new-format reader
    is_dt = tau_syn > 0 and math.isclose(
        tau_mem / tau_syn, FIRST_SPIKE_TAU_RATIOS["first_spike_dt"], rel_tol=1e-9
    )
    set_at(out, "learning.rule", "first_spike_dt" if is_dt else "first_spike_et")
