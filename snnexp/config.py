"""Experiment configuration: schema, defaults, validation and the legacy format.

A config is a YAML file with an optional ``name`` and four sections: ``dataset``, ``model``,
``learning`` and ``training``. Every key has a default, so a partial file is enough:
:func:`load_config` fills in the rest, checks everything and returns a fully resolved
:class:`ExperimentConfig`. All problems of a file are reported together in one
:class:`ConfigError`, one per line, each naming its key path and the fix.

The format of the published first-spike code (a ``dataset`` name plus ``neuron_params``,
``network_layout`` and ``training_params``) is read too and mapped onto the same schema; its
problems are reported under the legacy key names.

How values are read:

- an integer is accepted where a number is expected; ``true``/``false`` never count as numbers;
- a string that spells a finite number is accepted where a number is expected, because YAML 1.1
  (PyYAML) reads ``1e-3`` (no dot) as a string;
- a section written without entries (``training:`` alone, i.e. null) means all its defaults;
- ``model.bias_times`` may be one flat list, used for every layer (``[]``: no bias spikes), and
  ``training.weight_bumping.max_missing`` may be one number, used for every layer; the resolved
  config always holds one entry per layer.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import logging
import math
import os
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from snnexp.choices import NEURON_MODELS, READOUTS, RESETS

logger = logging.getLogger(__name__)

DATASET_SHAPES: dict[str, tuple[int, int]] = {
    "yin_yang": (4, 3),
    "mnist": (784, 10),
    "16x16_mnist": (256, 10),
    "fashion_mnist": (784, 10),
    "16x16_fashion_mnist": (256, 10),
    "sequential_mnist": (80, 10),
}
"""(n_inputs, n_classes) of every dataset snnexp knows."""
IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {
    "mnist": (1, 28, 28),
    "16x16_mnist": (1, 16, 16),
    "fashion_mnist": (1, 28, 28),
    "16x16_fashion_mnist": (1, 16, 16),
}
"""(channels, height, width) of the image datasets, the input shape of conv blocks."""

RULES = ("first_spike_et", "first_spike_dt", "bptt", "deep_r")
FIRST_SPIKE_TAU_RATIOS = {"first_spike_et": 1.0, "first_spike_dt": 2.0}
"""tau_mem / tau_syn that each exact first-spike rule requires."""
TIME_STEPPED_RULES = ("bptt", "deep_r")
SEQUENTIAL_DATASET = "sequential_mnist"
SEQUENCE_LENGTH = 784
"""Sequential MNIST presents one pixel per step."""

FIRST_SPIKE_LOSSES = ("ttfs", "mse")
TIME_STEPPED_LOSSES = ("cross_entropy", "mse_count")
LOSS_TYPES = (*FIRST_SPIKE_LOSSES, *TIME_STEPPED_LOSSES)
NEURON_TYPES = NEURON_MODELS
ENCODINGS = ("latency", "rate", "threshold_crossing", "direct")
OUTPUT_LAYERS = ("spiking", "membrane")
WEIGHT_INITS = ("normal", "uniform_fan_in")
SURROGATES = ("fast_sigmoid", "arctan", "triangle")
OPTIMIZER_TYPES = ("adam", "sgd")
SCHEDULER_TYPES = ("StepLR", "MultiStepLR", "ExponentialLR", "none")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float64", "float32")
SIMULATORS = ("exact", "stepped")


# --------------------------------------------------------------------------------------------
# schema


@dataclass
class EncodingConfig:
    """How values become spikes. Every dataset is first latency coded: a value v in [0, 1]
    spikes at t_early + v (t_late - t_early). Time-stepped (BPTT) networks then turn these times
    into spike trains: ``latency`` (the spike falls into step floor(t / dt); with
    ``interpolate`` it is split between that step and the next, amplitudes 1 - f and f for
    f = t / dt - floor(t / dt), so sub-step timing survives), ``rate`` (a
    Bernoulli spike per step with probability rate_gain (t_late - t) / (t_late - t_early)) or
    ``threshold_crossing`` (sequential MNIST: one pixel per step, 2 x thresholds neurons that
    fire when the intensity crosses their level upward or downward)."""

    t_early: float = 0.15
    t_late: float = 2.0
    type: str = "latency"
    rate_gain: float = 1.0
    thresholds: int = 40
    interpolate: bool = False


@dataclass
class DatasetConfig:
    """Which dataset, where it lives, the Yin-Yang split sizes and seeds, and the encoding."""

    name: str = "yin_yang"
    root: str | None = None
    download: bool = False
    train_size: int = 5000
    val_size: int = 1000
    test_size: int = 1000
    train_seed: int = 42
    val_seed: int = 41
    test_seed: int = 40
    encoding: EncodingConfig = field(default_factory=EncodingConfig)


@dataclass
class NeuronConfig:
    """Neuron parameters. First-spike rules use the current-based LIF ``synaptic`` neuron with
    tau_syn, tau_mem, threshold, leak (the resting potential E_L) and g_leak. Time-stepped (BPTT)
    networks use ``type`` (leaky, synaptic, alif, alpha, lapicque), the time constants in the
    units of model.dt, the threshold, the reset (subtract / zero) and refractory steps; alif
    adds tau_adapt and adapt_strength (LSNN's beta), lapicque uses resistance and capacitance
    (tau_mem = R C). learn_tau makes the time constants trainable, per_neuron_tau gives each
    neuron its own."""

    tau_syn: float = 1.0
    tau_mem: float = 1.0
    threshold: float = 1.0
    leak: float = 0.0
    g_leak: float = 1.0
    type: str = "synaptic"
    reset: str = "subtract"
    refractory_steps: int = 0
    tau_adapt: float = 700.0
    adapt_strength: float = 1.8
    resistance: float = 1.0
    capacitance: float = 1.0
    learn_tau: bool = False
    per_neuron_tau: bool = False


@dataclass
class ModelConfig:
    """Network layout, weight initialisation, bias spikes and the simulator.

    Time-stepped networks run round(sim_time / dt) steps of dt; per layer they may be
    ``recurrent`` (all-to-all) with feed-forward ``delays`` (in steps); ``adaptive_neurons``
    says how many neurons of an alif layer adapt (empty: all). The label layer is ``spiking``
    or a non-spiking ``membrane`` integrator, read out as spike_count, max_membrane,
    mean_membrane or first_spike over the last ``readout_steps`` steps (null: all).
    ``weight_init`` normal draws N(weight_mean, weight_std^2); uniform_fan_in draws
    U(-1/sqrt(n_in), 1/sqrt(n_in)) as torch.nn.Linear does.

    ``blocks`` (BPTT) describes the network as a graph of blocks instead (conv, pooling,
    neurons, delays, cycles; see :mod:`snnexp.graph.spec`); then ``layer_sizes`` and the
    per-layer keys are not used, and ``n_inputs`` is set from the dataset.
    """

    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    n_inputs: int = 4
    layer_sizes: list[int] = field(default_factory=lambda: [120, 3])
    bias_times: list[list[float]] = field(default_factory=lambda: [[0.9], [0.9]])
    weight_mean: list[float] = field(default_factory=lambda: [1.5, 0.5])
    weight_std: list[float] = field(default_factory=lambda: [0.8, 0.8])
    dtype: str = "float64"
    simulator: str = "exact"
    dt: float = 0.01
    sim_time: float = 4.0
    weight_init: str = "normal"
    recurrent: list[bool] = field(default_factory=lambda: [False, False])
    adaptive_neurons: list[int] = field(default_factory=list)
    delays: list[int] = field(default_factory=lambda: [0, 0])
    output: str = "spiking"
    readout: str = "spike_count"
    readout_steps: int | None = None
    blocks: list[dict] = field(default_factory=list)


@dataclass
class LossConfig:
    """Loss. First-spike rules: time-to-first-spike (xi, alpha, beta) or MSE to target times
    (t_correct, t_wrong). Time-stepped rules: cross_entropy on the read-out (first_spike
    read-outs use the temperature xi) or mse_count to target spike counts (count_correct and
    count_wrong, as fractions of the read-out steps); rate_regularization adds
    strength x mean over hidden neurons of (rate - target_rate)^2, rates in spikes per step."""

    type: str = "ttfs"
    xi: float = 0.2
    alpha: float = 0.005
    beta: float = 1.0
    t_correct: float = 1.0
    t_wrong: float = 2.0
    count_correct: float = 0.8
    count_wrong: float = 0.2
    rate_regularization: float = 0.0
    target_rate: float = 0.02


@dataclass
class SurrogateConfig:
    """The surrogate spike derivative of BPTT: fast_sigmoid, arctan or triangle (LSNN)."""

    type: str = "fast_sigmoid"
    slope: float = 25.0
    dampening: float = 1.0


SIGN_MODES = ("free", "dale")
SCOPES = ("per_layer", "global")
BIAS_SYNAPSES = ("rewired", "dense")
"""Choices of learning.rewiring.signs, .scope and .bias_synapses (DEEP R, snnexp.rewiring)."""


@dataclass
class RewiringConfig:
    """DEEP R: keep a fraction ``connectivity`` of each weight matrix (scope per_layer) or of
    all of them (global) active, with L1 strength l1 and noise temperature; signs free or
    following Dale's law (excitatory_fraction of the presynaptic neurons excitatory).
    bias_synapses: rewired (the bias spikes' rows are part of the budget) or dense (always
    active, free sign, outside the budget, like the biases of the DEEP R paper).
    connectivity null: dense, no rewiring."""

    connectivity: float | None = None
    l1: float = 0.0
    temperature: float = 0.0
    signs: str = "free"
    excitatory_fraction: float = 0.8
    scope: str = "per_layer"
    bias_synapses: str = "rewired"


@dataclass
class OptimizerConfig:
    """Optimizer type and its parameters."""

    type: str = "adam"
    lr: float = 0.005
    momentum: float = 0.0


@dataclass
class SchedulerConfig:
    """Learning-rate scheduler (type "none" keeps the rate constant)."""

    type: str = "StepLR"
    step_size: int = 20
    gamma: float = 0.95
    milestones: list[int] = field(default_factory=list)


@dataclass
class LearningConfig:
    """Learning rule, loss, optimizer and learning-rate schedule."""

    rule: str = "first_spike_et"
    loss: LossConfig = field(default_factory=LossConfig)
    surrogate: SurrogateConfig = field(default_factory=SurrogateConfig)
    rewiring: RewiringConfig = field(default_factory=RewiringConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    lr_scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)


@dataclass
class WeightBumpingConfig:
    """Raise weights when more than max_missing of a layer's neurons stay silent; skip_step:
    instead of the batch's optimizer step (published), else after it."""

    enabled: bool = True
    value: float = 0.0005
    exponential: bool = True
    targeted: bool = True
    max_missing: list[float] = field(default_factory=lambda: [0.3, 0.0])
    skip_step: bool = True


@dataclass
class NoiseConfig:
    """Gaussian noise added to the input spike times during training (std 0: none)."""

    mean: float = 0.0
    std: float = 0.0


@dataclass
class SeedConfig:
    """Seeds of the torch and numpy random generators."""

    torch: int = 2000
    numpy: int = 12345


@dataclass
class TrainingConfig:
    """The training loop: epochs, batches, savepoints, clipping, bumping, noise, seeds, device.
    ``log_every``: log the running training loss and accuracy every this many batches (null:
    once per epoch only), for epochs that take long."""

    epochs: int = 300
    batch_size: int = 150
    batch_size_eval: int = 200
    savepoints: list[int] = field(default_factory=list)
    log_every: int | None = None
    max_dw_norm: float | None = 0.2
    weight_bumping: WeightBumpingConfig = field(default_factory=WeightBumpingConfig)
    input_noise: NoiseConfig = field(default_factory=NoiseConfig)
    seeds: SeedConfig = field(default_factory=SeedConfig)
    device: str = "auto"


@dataclass
class ExperimentConfig:
    """A complete, validated experiment description."""

    name: str | None = None
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)


class ConfigError(ValueError):
    """An unreadable or invalid config. The message is complete and meant for the user.

    ``problems`` lists the individual problems (one per line of the message).
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


# --------------------------------------------------------------------------------------------
# public functions


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read, fill in and validate the config file at ``path`` (new or legacy format).

    ``overrides`` are ``key.path=value`` settings put into the file's content before it is
    read (see :func:`apply_overrides`). ``name`` defaults to the file's stem. Raises
    :class:`ConfigError` for a missing, empty or malformed file, a malformed override and for
    every invalid value.
    """
    path = Path(path)
    data = _read_yaml(path)
    source = str(path)
    if overrides:
        _require_mapping(data, source)
        data = apply_overrides(data, overrides)
        source = f"{path} (with {'; '.join(overrides)})"
    if is_legacy_config(data):
        cfg = legacy_config_from_dict(data, source)
    else:
        cfg = config_from_dict(data, source)
    if cfg.name is None:
        cfg.name = path.stem
    return cfg


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of the config mapping ``data`` with each ``key.path=value`` of ``overrides`` set.

    The key path uses the file's own key names (dots between sections); missing sections are
    created. The value is read as YAML: ``model.layer_sizes=[300, 3]``,
    ``training.weight_bumping.skip_step=false``, ``learning.rewiring=null``.
    :func:`load_config` checks the result as it checks a file: a misspelt key gets "did you mean".
    """
    tree = copy.deepcopy(dict(data))
    for setting in overrides:
        key, separator, text = setting.partition("=")
        key = key.strip()
        if not separator or not all(key.split(".")):
            raise ConfigError(
                f"cannot read the setting {setting!r}: write key.path=value, "
                "e.g. model.layer_sizes=[300, 3]"
            )
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or err
            raise ConfigError(
                f"cannot read the value of {key} in {setting!r} as YAML: {problem}"
            ) from None
        _put(tree, key, value)
    return tree


def config_from_dict(data: Mapping[str, Any], source: str = "<config>") -> ExperimentConfig:
    """Build a validated config from a (possibly partial) new-format mapping.

    ``source`` names the origin in error messages. A top-level ``snnexp_version`` key (written
    into resolved configs) is ignored.
    """
    _require_mapping(data, source)
    return _build(
        {k: v for k, v in data.items() if k not in _IGNORED_TOP_KEYS}, source, _Problems()
    )


def legacy_config_from_dict(data: Mapping[str, Any], source: str = "<config>") -> ExperimentConfig:
    """Build a validated config from the published first-spike code's config format."""
    _require_mapping(data, source)
    problems = _Problems(labels=_LEGACY_LABELS)
    return _build(_legacy_to_new(data, problems), source, problems)


def is_legacy_config(data: Any) -> bool:
    """Whether ``data`` is in the published first-spike code's format.

    True when it has a legacy section (neuron_params, network_layout, training_params), or when
    ``dataset`` is a plain name and no new-format section is present.
    """
    if not isinstance(data, Mapping):
        return False
    if any(key in data for key in _LEGACY_SECTIONS):
        return True
    new_sections = {f.name for f in dataclasses.fields(ExperimentConfig)} - {"dataset"}
    return isinstance(data.get("dataset"), str) and not any(key in data for key in new_sections)


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config as nested plain dicts, lists and scalars (``config_from_dict`` inverts it)."""
    return dataclasses.asdict(cfg)


def dump_config_yaml(cfg: ExperimentConfig, extra: Mapping[str, Any] | None = None) -> str:
    """The config as YAML text, with the top-level keys of ``extra`` (e.g. a version) first."""
    body = config_to_dict(cfg)
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(body))
    if clash:
        raise ValueError(f"extra keys {clash} would overwrite config keys")
    return yaml.safe_dump({**extra, **body}, sort_keys=False)


# --------------------------------------------------------------------------------------------
# reading the file


def _read_yaml(path: Path) -> Any:
    """The parsed YAML content of ``path``; ConfigError when it is absent, unreadable or empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {path}\n"
            f"hint: check the spelling; a relative path starts from the current folder {Path.cwd()}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; give the path of a YAML config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_error_message(path, err)) from None
    if data is None:
        raise ConfigError(
            f"config file is empty: {path}; write at least one section, "
            "e.g. 'training: {epochs: 10}' (every other key has a default)"
        )
    return data


def _yaml_error_message(path: Path, err: yaml.YAMLError) -> str:
    """A one-paragraph description of a YAML syntax error with its line and column."""
    mark = getattr(err, "problem_mark", None)
    if mark is None:
        return f"{path}: YAML syntax error: {err}"
    problem = getattr(err, "problem", None) or "invalid YAML"
    context = getattr(err, "context", None)
    context_mark = getattr(err, "context_mark", None)
    if context and context_mark is not None:
        context = f"{context} that starts at line {context_mark.line + 1}"
    detail = f"{problem} ({context})" if context else problem
    return f"{path}: YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: {detail}"


def _require_mapping(data: Any, source: str) -> None:
    """Raise ConfigError unless the top level of a config is a mapping."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: a config must be a mapping of sections (dataset, model, learning, "
            f"training), got {_show(data)}"
        )


# --------------------------------------------------------------------------------------------
# collecting problems


@dataclass
class _Problems:
    """Every problem found in one config, plus the key paths whose values could not be read.

    ``labels`` maps key paths (or their prefixes) to the names shown to the user; a legacy
    config uses it to report problems under its own key names.
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)

    def name(self, path: str) -> str:
        """The display name of a key path."""
        for prefix in sorted(self.labels, key=len, reverse=True):
            if path == prefix or path.startswith((prefix + ".", prefix + "[")):
                return self.labels[prefix] + path[len(prefix) :]
        return path

    def note(self, message: str) -> None:
        """Record a complete message."""
        self.messages.append(message)

    def add(self, path: str, message: str) -> None:
        """Record a problem of the value at ``path``."""
        self.note(f"{self.name(path)}: {message}")

    def reject(self, path: str, message: str) -> None:
        """Record an unreadable value; checks that involve ``path`` are skipped from now on."""
        self.add(path, message)
        self.failed.add(path.split("[", 1)[0])

    def usable(self, *paths: str) -> bool:
        """Whether every path (and every section above it) was read successfully."""
        return not any(p == f or p.startswith(f + ".") for p in paths for f in self.failed)

    def raise_if_any(self, source: str) -> None:
        """Raise one ConfigError that lists every recorded problem."""
        if not self.messages:
            return
        if len(self.messages) == 1:
            text = f"{source}: {self.messages[0]}"
        else:
            lines = "\n".join(f"  - {message}" for message in self.messages)
            text = f"{source}: {len(self.messages)} problems:\n{lines}"
        raise ConfigError(text, self.messages)


def _show(value: Any) -> str:
    """A value as quoted in messages: its repr (shortened) and its type."""
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _count(number: int, singular: str, plural: str) -> str:
    """'1 layer', '2 layers'."""
    return f"{number} {singular if number == 1 else plural}"


def _close_match(word: Any, choices: Sequence[str]) -> str | None:
    """The choice closest to ``word`` (ignoring case), or None when nothing is close."""
    by_lower = {choice.lower(): choice for choice in choices}
    found = difflib.get_close_matches(str(word).lower(), list(by_lower), n=1)
    return by_lower[found[0]] if found else None


def _unknown_key(shown: str, key: str, valid: Sequence[str], where: str, moved: str = "") -> str:
    """The message for an unknown key: a close match, else its right section, else the keys."""
    close = _close_match(key, valid)
    if close:
        return f"unknown key '{shown}'; did you mean '{close}'?"
    if moved:
        return f"unknown key '{shown}'; did you mean '{moved}'? (it belongs in another section)"
    return f"unknown key '{shown}'; valid keys {where}: {', '.join(valid)}"


# --------------------------------------------------------------------------------------------
# reading values by type


class _Mismatch(Exception):
    """A value does not have the expected type; ``where`` locates it inside lists."""

    def __init__(self, expected: str, value: Any, where: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.where = where


_INVALID = object()
_UNIONS = (typing.Union, types.UnionType)
_NOUNS: dict[Any, tuple[str, str]] = {
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    bool: ("true or false", "true/false values"),
    str: ("a string", "strings"),
    type(None): ("null", "nulls"),
    dict: ("a mapping", "mappings"),
    list: ("a list", "lists"),
}
_IGNORED_TOP_KEYS = ("snnexp_version",)
# Keys whose input may take a shorter form than the stored type; _normalize expands it.
_INPUT_HINTS: dict[str, Any] = {
    "model.bias_times": list[list[float]] | list[float],
    "training.weight_bumping.max_missing": list[float] | float,
    "learning.lr_scheduler.type": str | None,
    "model.recurrent": list[bool] | bool,
    "model.blocks": list,
}


def _describe(hint: Any, plural: bool = False) -> str:
    """A type hint in words, e.g. 'a list of integers'."""
    origin = typing.get_origin(hint)
    if origin in _UNIONS:
        return " or ".join(_describe(option, plural) for option in typing.get_args(hint))
    if origin is list:
        inner = _describe(typing.get_args(hint)[0], plural=True)
        return ("lists of " if plural else "a list of ") + inner
    return _NOUNS[hint][plural]


def _convert(hint: Any, value: Any) -> Any:
    """``value`` read as type ``hint``; raises _Mismatch when it is not one."""
    origin = typing.get_origin(hint)
    if origin in _UNIONS:
        for option in typing.get_args(hint):
            try:
                return _convert(option, value)
            except _Mismatch:
                continue
        raise _Mismatch(_describe(hint), value)
    if origin is list:
        return _convert_list(hint, value)
    if hint is float:
        return _to_float(value)
    if hint is dict and isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise _Mismatch(_describe(hint), value)


def _convert_list(hint: Any, value: Any) -> list[Any]:
    """A list with every item read as the item type of ``hint``."""
    if not isinstance(value, (list, tuple)):
        raise _Mismatch(_describe(hint), value)
    item_hint = typing.get_args(hint)[0]
    items = []
    for index, item in enumerate(value):
        try:
            items.append(_convert(item_hint, item))
        except _Mismatch as err:
            raise _Mismatch(err.expected, err.value, f"[{index}]{err.where}") from None
    return items


def _to_float(value: Any) -> float:
    """A finite float from an int, a float or a numeric string (never from a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Mismatch("a number", value)
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise _Mismatch("a number", value) from None
    if not math.isfinite(number):
        raise _Mismatch("a finite number", value)
    return number


# --------------------------------------------------------------------------------------------
# building the config


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a schema dataclass, in field order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _schema_paths(cls: type = ExperimentConfig, prefix: str = "") -> Iterator[str]:
    """Every key path of the schema, sections included."""
    for name, hint in _field_hints(cls).items():
        path = _join(prefix, name)
        yield path
        if dataclasses.is_dataclass(hint):
            yield from _schema_paths(hint, path)


def _join(prefix: str, key: Any) -> str:
    """A key path: ``prefix.key``, or ``key`` at the top level."""
    return f"{prefix}.{key}" if prefix else str(key)


def _build(data: Mapping[str, Any], source: str, problems: _Problems) -> ExperimentConfig:
    """Parse, expand and validate ``data``; raise one ConfigError listing every problem."""
    cfg = _parse_section(ExperimentConfig, data, "", problems)
    _normalize(cfg)
    _validate(cfg, problems)
    problems.raise_if_any(source)
    return cfg


def _parse_section(cls: type, data: Any, path: str, problems: _Problems) -> Any:
    """Build dataclass ``cls`` from ``data``; unreadable entries are reported and left default."""
    if data is None:
        return cls()
    if not isinstance(data, Mapping):
        problems.reject(
            path, f"expected a section (a mapping of keys to values), got {_show(data)}"
        )
        return cls()
    hints = _field_hints(cls)
    values = {}
    for key, value in data.items():
        key_path = _join(path, key)
        if key in hints:
            parsed = _parse_field(hints[key], value, key_path, problems)
            if parsed is not _INVALID:
                values[key] = parsed
        else:
            problems.note(_unknown_section_key(key, path, list(hints), problems))
    return cls(**values)


def _unknown_section_key(key: Any, path: str, valid: list[str], problems: _Problems) -> str:
    """The unknown-key message for a key of the new format, with a suggestion where possible.

    A key that exists in another section is pointed there, except in a legacy config, whose
    user knows other key paths.
    """
    same_name = (p for p in _schema_paths() if p.rsplit(".", 1)[-1] == str(key))
    moved = "" if problems.labels else next(same_name, "")
    where = f"in '{problems.name(path)}'" if path else "at the top level"
    return _unknown_key(problems.name(_join(path, key)), str(key), valid, where, moved)


def _parse_field(hint: Any, value: Any, path: str, problems: _Problems) -> Any:
    """One field's value read as ``hint``, or _INVALID after reporting why it cannot be."""
    if dataclasses.is_dataclass(hint):
        return _parse_section(hint, value, path, problems)
    try:
        return _convert(_INPUT_HINTS.get(path, hint), value)
    except _Mismatch as err:
        problems.reject(path + err.where, f"expected {err.expected}, got {_show(err.value)}")
        return _INVALID


def _normalize(cfg: ExperimentConfig) -> None:
    """Expand the short input forms: per-layer broadcasts and the 'none' scheduler."""
    n_layers = len(cfg.model.layer_sizes)
    bias_times: list[Any] = cfg.model.bias_times
    if not bias_times or not isinstance(bias_times[0], list):
        cfg.model.bias_times = [list(bias_times) for _ in range(n_layers)]
    bumping = cfg.training.weight_bumping
    if isinstance(bumping.max_missing, float):
        bumping.max_missing = [bumping.max_missing] * n_layers
    if isinstance(cfg.model.recurrent, bool):
        cfg.model.recurrent = [cfg.model.recurrent] * n_layers
    for key, empty in (("recurrent", False), ("delays", 0)):
        if all(value == empty for value in getattr(cfg.model, key)):
            setattr(cfg.model, key, [empty] * n_layers)
    scheduler = cfg.learning.lr_scheduler
    if scheduler.type is None or scheduler.type.lower() == "none":
        scheduler.type = "none"
    if cfg.model.blocks and cfg.dataset.name in DATASET_SHAPES:
        n_inputs = DATASET_SHAPES[cfg.dataset.name][0]
        if cfg.dataset.name == SEQUENTIAL_DATASET:
            n_inputs = 2 * cfg.dataset.encoding.thresholds
        cfg.model.n_inputs = n_inputs


# --------------------------------------------------------------------------------------------
# validation


def _is_positive(value: float) -> bool:
    """value > 0."""
    return value > 0


def _is_non_negative(value: float) -> bool:
    """value >= 0."""
    return value >= 0


def _is_fraction(value: float) -> bool:
    """0 <= value <= 1."""
    return 0 <= value <= 1


def _is_connectivity(value: float) -> bool:
    """0 < value <= 1."""
    return 0 < value <= 1


def _is_seed(value: float) -> bool:
    """A seed numpy and torch accept."""
    return 0 <= value < 2**32


_ENUMS: tuple[tuple[str, Sequence[str]], ...] = (
    ("dataset.name", tuple(DATASET_SHAPES)),
    ("model.dtype", DTYPES),
    ("model.simulator", SIMULATORS),
    ("learning.rule", RULES),
    ("learning.loss.type", LOSS_TYPES),
    ("learning.optimizer.type", OPTIMIZER_TYPES),
    ("learning.lr_scheduler.type", SCHEDULER_TYPES),
    ("training.device", DEVICES),
    ("dataset.encoding.type", ENCODINGS),
    ("model.neuron.type", NEURON_TYPES),
    ("model.neuron.reset", RESETS),
    ("model.weight_init", WEIGHT_INITS),
    ("model.output", OUTPUT_LAYERS),
    ("model.readout", READOUTS),
    ("learning.surrogate.type", SURROGATES),
    ("learning.rewiring.signs", SIGN_MODES),
    ("learning.rewiring.scope", SCOPES),
    ("learning.rewiring.bias_synapses", BIAS_SYNAPSES),
)
_POSITIVE = (
    "dataset.train_size",
    "dataset.val_size",
    "dataset.test_size",
    "model.neuron.tau_syn",
    "model.neuron.tau_mem",
    "model.neuron.g_leak",
    "model.n_inputs",
    "model.layer_sizes",
    "model.dt",
    "model.sim_time",
    "learning.loss.xi",
    "learning.loss.beta",
    "learning.optimizer.lr",
    "learning.lr_scheduler.step_size",
    "learning.lr_scheduler.gamma",
    "learning.lr_scheduler.milestones",
    "training.epochs",
    "training.batch_size",
    "training.batch_size_eval",
    "training.log_every",
    "training.max_dw_norm",
    "dataset.encoding.thresholds",
    "model.neuron.tau_adapt",
    "model.neuron.resistance",
    "model.neuron.capacitance",
    "model.readout_steps",
    "learning.surrogate.slope",
)
_NON_NEGATIVE = (
    "model.weight_std",
    "learning.loss.alpha",
    "learning.optimizer.momentum",
    "training.weight_bumping.value",
    "training.input_noise.std",
    "dataset.encoding.rate_gain",
    "model.neuron.refractory_steps",
    "model.neuron.adapt_strength",
    "model.adaptive_neurons",
    "model.delays",
    "learning.surrogate.dampening",
    "learning.loss.count_correct",
    "learning.loss.count_wrong",
    "learning.loss.rate_regularization",
    "learning.loss.target_rate",
    "learning.rewiring.l1",
    "learning.rewiring.temperature",
)
_SEEDS = (
    "dataset.train_seed",
    "dataset.val_seed",
    "dataset.test_seed",
    "training.seeds.torch",
    "training.seeds.numpy",
)
_RANGES: tuple[tuple[str, Callable[[float], bool], str], ...] = (
    *((path, _is_positive, "> 0") for path in _POSITIVE),
    *((path, _is_non_negative, ">= 0") for path in _NON_NEGATIVE),
    *((path, _is_seed, "in 0 .. 2**32 - 1") for path in _SEEDS),
    ("training.weight_bumping.max_missing", _is_fraction, "between 0 and 1"),
    ("learning.rewiring.connectivity", _is_connectivity, "in (0, 1]"),
    ("learning.rewiring.excitatory_fraction", _is_fraction, "between 0 and 1"),
)
_PER_LAYER = (
    "model.weight_mean",
    "model.weight_std",
    "model.bias_times",
    "training.weight_bumping.max_missing",
    "model.recurrent",
    "model.delays",
)


def _get(cfg: ExperimentConfig, path: str) -> Any:
    """The value at a dotted key path."""
    value: Any = cfg
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _items(value: Any) -> Iterator[tuple[str, Any]]:
    """(index suffix, item) for each list item, or ("", value) for a scalar."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield f"[{index}]", item
    else:
        yield "", value


def _validate(cfg: ExperimentConfig, problems: _Problems) -> None:
    """Record every semantic problem of a parsed config (values that could be read)."""
    _check_name(cfg, problems)
    _check_enums(cfg, problems)
    _check_ranges(cfg, problems)
    _check_order(cfg, problems)
    _check_savepoints(cfg, problems)
    _check_scheduler(cfg, problems)
    _check_layer_lengths(cfg, problems)
    _check_dataset_shape(cfg, problems)
    _check_tau_ratio(cfg, problems)
    _check_rule_fit(cfg, problems)
    _check_blocks(cfg, problems)


def _check_name(cfg: ExperimentConfig, problems: _Problems) -> None:
    """The name becomes part of a folder name: non-empty, no path separators."""
    name = cfg.name
    if name is not None and (not name.strip() or "/" in name or "\\" in name):
        problems.add("name", f"must be a non-empty name without '/' or '\\', got {name!r}")


def _check_enums(cfg: ExperimentConfig, problems: _Problems) -> None:
    """Keys with a fixed set of values."""
    for path, choices in _ENUMS:
        value = _get(cfg, path)
        if problems.usable(path) and value not in choices:
            options = ", ".join(repr(choice) for choice in choices)
            close = _close_match(value, choices)
            hint = f"; did you mean {close!r}?" if close else ""
            problems.add(path, f"expected one of {options}, got {value!r}{hint}")


def _check_ranges(cfg: ExperimentConfig, problems: _Problems) -> None:
    """Numeric bounds of single values (each item of a list)."""
    for path, ok, rule in _RANGES:
        if not problems.usable(path):
            continue
        for where, value in _items(_get(cfg, path)):
            if value is not None and not ok(value):
                problems.add(path + where, f"must be {rule}, got {value}")


def _check_order(cfg: ExperimentConfig, problems: _Problems) -> None:
    """Pairs of values that must be ordered."""
    pairs = (
        ("dataset.encoding.t_early", "dataset.encoding.t_late", "later than"),
        ("model.neuron.leak", "model.neuron.threshold", "above"),
        ("model.dt", "model.sim_time", "longer than"),
    )
    for low_path, high_path, relation in pairs:
        if not problems.usable(low_path, high_path):
            continue
        low, high = _get(cfg, low_path), _get(cfg, high_path)
        if not low < high:
            problems.add(
                high_path, f"must be {relation} {problems.name(low_path)} ({low}), got {high}"
            )


def _check_savepoints(cfg: ExperimentConfig, problems: _Problems) -> None:
    """Savepoints are epochs within 1..epochs."""
    if not problems.usable("training.savepoints", "training.epochs"):
        return
    epochs = cfg.training.epochs
    for index, epoch in enumerate(cfg.training.savepoints):
        if not 1 <= epoch <= epochs:
            problems.add(
                f"training.savepoints[{index}]",
                f"must be an epoch in 1..{epochs} ({problems.name('training.epochs')}), "
                f"got {epoch}",
            )


def _check_scheduler(cfg: ExperimentConfig, problems: _Problems) -> None:
    """MultiStepLR without milestones would silently keep the rate constant."""
    scheduler = cfg.learning.lr_scheduler
    paths = ("learning.lr_scheduler.type", "learning.lr_scheduler.milestones")
    if problems.usable(*paths) and scheduler.type == "MultiStepLR" and not scheduler.milestones:
        problems.add(paths[1], "MultiStepLR needs at least one milestone epoch, e.g. [100, 200]")


def _check_layer_lengths(cfg: ExperimentConfig, problems: _Problems) -> None:
    """Per-layer lists have one entry per layer (of a stack, not a graph of blocks)."""
    if not problems.usable("model.layer_sizes") or cfg.model.blocks:
        return
    n_layers = len(cfg.model.layer_sizes)
    sizes_name = problems.name("model.layer_sizes")
    if n_layers == 0:
        problems.add("model.layer_sizes", "needs at least one layer, e.g. [120, 3]")
        return
    for path in _PER_LAYER:
        if not problems.usable(path):
            continue
        count = len(_get(cfg, path))
        if count != n_layers:
            problems.add(
                path,
                f"has {_count(count, 'entry', 'entries')} but {sizes_name} has "
                f"{_count(n_layers, 'layer', 'layers')}; give one entry per layer",
            )


def _check_dataset_shape(cfg: ExperimentConfig, problems: _Problems) -> None:
    """The input count and the label layer match the dataset."""
    dataset = cfg.dataset.name
    if not problems.usable("dataset.name") or dataset not in DATASET_SHAPES or cfg.model.blocks:
        return
    n_inputs, n_classes = DATASET_SHAPES[dataset]
    if dataset == SEQUENTIAL_DATASET and problems.usable("dataset.encoding.thresholds"):
        n_inputs = 2 * cfg.dataset.encoding.thresholds
    if problems.usable("model.n_inputs") and cfg.model.n_inputs != n_inputs:
        problems.note(
            f"{problems.name('model.n_inputs')} is {cfg.model.n_inputs} but dataset "
            f"'{dataset}' has {n_inputs} inputs; set it to {n_inputs}"
        )
    sizes = cfg.model.layer_sizes
    if problems.usable("model.layer_sizes") and sizes and sizes[-1] != n_classes:
        problems.note(
            f"the last entry of {problems.name('model.layer_sizes')} is {sizes[-1]} but dataset "
            f"'{dataset}' has {n_classes} classes; the label layer needs {n_classes} neurons"
        )


def _check_tau_ratio(cfg: ExperimentConfig, problems: _Problems) -> None:
    """Exact first-spike rules hold only for their tau_mem / tau_syn ratio."""
    rule = cfg.learning.rule
    needed = FIRST_SPIKE_TAU_RATIOS.get(rule)
    neuron = cfg.model.neuron
    paths = ("learning.rule", "model.neuron.tau_syn", "model.neuron.tau_mem")
    if needed is None or not problems.usable(*paths) or neuron.tau_syn <= 0:
        return
    ratio = neuron.tau_mem / neuron.tau_syn
    if math.isclose(ratio, needed, rel_tol=1e-9):
        return
    relation = "tau_mem = tau_syn" if needed == 1 else f"tau_mem = {needed:g} tau_syn"
    supported = " and ".join(
        f"ratio {value:g} ({name})" for name, value in FIRST_SPIKE_TAU_RATIOS.items()
    )
    problems.note(
        f"learning.rule '{rule}' needs {relation} (ratio {needed:g}); got tau_mem/tau_syn = "
        f"{ratio:.10g}. Exact first-spike learning supports {supported}."
    )


# --------------------------------------------------------------------------------------------
# the legacy format (code of Goeltz, Kriener et al. 2021)

_LEGACY_SECTIONS = ("neuron_params", "network_layout", "training_params")
_LEGACY_TOP_KEYS = ("dataset", *_LEGACY_SECTIONS)
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
_LEGACY_LABELS = {new: old for old, new in _LEGACY_RENAMES.items()} | {
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

_LegacyHandler = Callable[[Any, dict, _Problems], None]


def _put(tree: dict[str, Any], path: str, value: Any) -> None:
    """Set ``tree[a][b][c] = value`` for path 'a.b.c', creating the sections on the way (also
    where a section is null); ConfigError where one on the way is not a section."""
    *sections, leaf = path.split(".")
    for depth, section in enumerate(sections):
        if tree.get(section) is None:
            tree[section] = {}
        tree = tree[section]
        if not isinstance(tree, dict):
            where = ".".join(sections[: depth + 1])
            raise ConfigError(
                f"cannot set {path}: {where} is {_show(tree)}, not a section with keys"
            )
    tree[leaf] = value


def _legacy_switch(path: str, target: str, when_true: str, when_false: str) -> _LegacyHandler:
    """A handler for a legacy true/false key that selects one of two new values."""

    def handle(value: Any, out: dict, problems: _Problems) -> None:
        if value is not None and not isinstance(value, bool):
            problems.add(path, f"expected true or false, got {_show(value)}")
            return
        _put(out, target, when_true if value else when_false)

    return handle


def _legacy_unsupported(path: str, feature: str) -> _LegacyHandler:
    """A handler for a legacy feature snnexp lacks: fine when off (false/null), else an error."""

    def handle(value: Any, out: dict, problems: _Problems) -> None:
        if value in (None, False):
            logger.info("legacy key %s is off; ignored", path)
        else:
            problems.add(path, f"{feature} is not supported by snnexp; set it to false")

    return handle


def _legacy_hicannx(value: Any, out: dict, problems: _Problems) -> None:
    """use_hicannx selects neuromorphic hardware, which snnexp cannot run."""
    if value is True:
        problems.note(f"training_params.{_HICANNX_MESSAGE}")
    elif value is not None and value is not False:
        problems.add("training_params.use_hicannx", f"expected true or false, got {_show(value)}")


def _legacy_noise(value: Any, out: dict, problems: _Problems) -> None:
    """training_noise: false (no noise) or {mean, std_dev}."""
    path = "training_params.training_noise"
    if value is None or value is False:
        _put(out, "training.input_noise", {"mean": 0.0, "std": 0.0})
        return
    if not isinstance(value, Mapping):
        problems.add(path, f"expected false or {{mean: ..., std_dev: ...}}, got {_show(value)}")
        return
    noise = {}
    for key, item in value.items():
        if key in ("mean", "std_dev"):
            noise["std" if key == "std_dev" else "mean"] = item
        else:
            shown = f"{path}.{key}"
            problems.note(_unknown_key(shown, str(key), ("mean", "std_dev"), f"in '{path}'"))
    _put(out, "training.input_noise", noise)


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


def _legacy_to_new(data: Mapping[str, Any], problems: _Problems) -> dict[str, Any]:
    """A legacy config rewritten as a new-format mapping (legacy-only problems recorded)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "dataset":
            _put(out, "dataset.name", value)
        elif key in _LEGACY_SECTIONS:
            _legacy_section(key, value, out, problems)
        else:
            where = "at the top level of a legacy config"
            problems.note(_unknown_key(str(key), str(key), _LEGACY_TOP_KEYS, where))
    layout = data.get("network_layout")
    if isinstance(layout, Mapping):
        _legacy_layout(layout, out, problems)
    neuron = data.get("neuron_params")
    if isinstance(neuron, Mapping):
        _legacy_neuron(neuron, out)
    return out


def _legacy_section(section: str, params: Any, out: dict, problems: _Problems) -> None:
    """Map one legacy section's keys, except those read with the layer sizes."""
    if params is None:
        return
    if not isinstance(params, Mapping):
        problems.add(
            section, f"expected a section (a mapping of keys to values), got {_show(params)}"
        )
        return
    for key, value in params.items():
        path = f"{section}.{key}"
        if path in _LEGACY_RENAMES:
            _put(out, _LEGACY_RENAMES[path], value)
        elif path in _LEGACY_HANDLERS:
            _LEGACY_HANDLERS[path](value, out, problems)
        elif path in _LEGACY_IGNORED:
            logger.info("legacy key %s has no meaning in snnexp; ignored", path)
        elif path not in _LEGACY_LAYOUT_KEYS:
            valid = _legacy_known_keys(section)
            problems.note(_unknown_key(path, str(key), valid, f"in '{section}'"))


def _legacy_layout(layout: Mapping[str, Any], out: dict, problems: _Problems) -> None:
    """Check n_layers and n_biases against layer_sizes and build the per-layer bias times."""
    sizes = layout.get("layer_sizes")
    n_layers = layout.get("n_layers")
    if n_layers is not None and isinstance(sizes, list) and n_layers != len(sizes):
        problems.note(
            f"network_layout.n_layers is {n_layers!r} but network_layout.layer_sizes has "
            f"{len(sizes)} layers; make them agree"
        )
    if "bias_times" in layout or "n_biases" in layout:
        _put(out, "model.bias_times", _legacy_bias_times(layout, problems))


def _legacy_bias_times(layout: Mapping[str, Any], problems: _Problems) -> Any:
    """Layer i gets the first n_biases[i] bias times (all of them when n_biases is absent)."""
    times = layout.get("bias_times", [])
    counts = layout.get("n_biases")
    if counts is None or not isinstance(times, list):
        return times  # the new-format reader checks what is left
    try:
        counts = _convert(list[int], counts)
    except _Mismatch as err:
        problems.add(
            f"network_layout.n_biases{err.where}",
            f"expected {err.expected}, got {_show(err.value)}",
        )
        return times
    sizes = layout.get("layer_sizes")
    if isinstance(sizes, list) and len(counts) != len(sizes):
        problems.add(
            "network_layout.n_biases",
            f"has {_count(len(counts), 'entry', 'entries')} but network_layout.layer_sizes "
            f"has {_count(len(sizes), 'layer', 'layers')}",
        )
    nested = bool(times) and all(isinstance(item, list) for item in times)
    per_layer = times if nested else [times] * len(counts)
    result = []
    for index, (count, layer_times) in enumerate(zip(counts, per_layer, strict=False)):
        if not 0 <= count <= len(layer_times):
            problems.add(
                f"network_layout.n_biases[{index}]",
                f"is {count} but network_layout.bias_times holds "
                f"{_count(len(layer_times), 'time', 'times')} for layer {index}; "
                f"use 0..{len(layer_times)}",
            )
        result.append(layer_times[: max(count, 0)])
    return result


def _legacy_neuron(neuron: Mapping[str, Any], out: dict) -> None:
    """tau_mem defaults to tau_syn; the rule follows from their ratio (1: ET, 2: DT)."""
    if "tau_mem" not in neuron and "tau_syn" in neuron:
        _put(out, "model.neuron.tau_mem", neuron["tau_syn"])
    try:
        tau_syn = _to_float(neuron.get("tau_syn", NeuronConfig.tau_syn))
        tau_mem = _to_float(neuron.get("tau_mem", neuron.get("tau_syn", NeuronConfig.tau_mem)))
    except _Mismatch:
        return  # reported by the new-format reader
    is_dt = tau_syn > 0 and math.isclose(
        tau_mem / tau_syn, FIRST_SPIKE_TAU_RATIOS["first_spike_dt"], rel_tol=1e-9
    )
    _put(out, "learning.rule", "first_spike_dt" if is_dt else "first_spike_et")


def n_steps(model: ModelConfig) -> int:
    """Number of steps of a time-stepped simulation: round(sim_time / dt)."""
    return max(1, round(model.sim_time / model.dt))


def _check_rule_fit(cfg: ExperimentConfig, problems: _Problems) -> None:
    """Settings that only one family of rules (first-spike or time-stepped) can use."""
    rule = cfg.learning.rule
    if not problems.usable("learning.rule") or rule not in RULES:
        return
    rewiring = cfg.learning.rewiring
    if rule == "deep_r" and problems.usable("learning.rewiring") and rewiring.connectivity is None:
        problems.add(
            "learning.rewiring.connectivity",
            "learning.rule 'deep_r' (BPTT with rewiring) needs a connectivity fraction, "
            "e.g. 0.1; or use rule bptt for a dense network",
        )
    if rule in TIME_STEPPED_RULES:
        _check_time_stepped(cfg, problems)
        return
    family = "time-stepped rules (bptt, deep_r)"
    misfits = (
        ("learning.loss.type", FIRST_SPIKE_LOSSES),
        ("model.neuron.type", ("synaptic",)),
        ("dataset.encoding.type", ("latency",)),
    )
    for path, allowed in misfits:
        value = _get(cfg, path)
        if problems.usable(path) and value in dict(_ENUMS)[path] and value not in allowed:
            options = " or ".join(repr(item) for item in allowed)
            problems.add(
                path,
                f"{value!r} is for {family}; learning.rule {rule!r} needs {options}",
            )
    if problems.usable("dataset.name") and cfg.dataset.name == SEQUENTIAL_DATASET:
        problems.add(
            "dataset.name",
            f"{SEQUENTIAL_DATASET!r} is presented pixel by pixel and needs a time-stepped rule "
            "(learning.rule: bptt); first-spike rules take mnist",
        )


def _check_time_stepped(cfg: ExperimentConfig, problems: _Problems) -> None:
    """Consistency of a time-stepped (BPTT) network's config."""
    model, rule = cfg.model, cfg.learning.rule
    if cfg.learning.loss.type in FIRST_SPIKE_LOSSES and problems.usable("learning.loss.type"):
        problems.add(
            "learning.loss.type",
            f"{cfg.learning.loss.type!r} is for first-spike rules; learning.rule {rule!r} needs "
            "'cross_entropy' or 'mse_count'",
        )
    encoding = cfg.dataset.encoding.type
    interpolate = cfg.dataset.encoding.interpolate
    if problems.usable("dataset.encoding.interpolate") and interpolate and encoding != "latency":
        problems.add(
            "dataset.encoding.interpolate",
            f"splits latency spikes between steps; the {encoding!r} encoding has no spike times "
            "to split: set it to false or use dataset.encoding.type: latency",
        )
    graph = bool(model.blocks)
    if (
        problems.usable("model.bias_times")
        and any(model.bias_times)
        and encoding != "latency"
        and not graph
    ):
        problems.add(
            "model.bias_times",
            f"bias spikes go with latency-coded inputs, not {encoding!r} ones; set "
            "model.bias_times: []",
        )
    if problems.usable("model.output", "model.readout") and model.output == "membrane":
        if model.readout in ("spike_count", "first_spike") and not graph:
            problems.add(
                "model.readout",
                f"{model.readout!r} needs a spiking label layer (model.output: spiking); a "
                "membrane output is read as max_membrane or mean_membrane",
            )
    if not problems.usable("model.dt", "model.sim_time"):
        return
    steps = n_steps(model)
    if problems.usable("model.readout_steps") and (model.readout_steps or 0) > steps:
        problems.add(
            "model.readout_steps",
            f"is {model.readout_steps} but the simulation has only {steps} steps "
            "(model.sim_time / model.dt)",
        )
    neuron = model.neuron
    if neuron.type == "lapicque" and model.dt >= neuron.resistance * neuron.capacitance:
        problems.add(
            "model.dt",
            f"must be shorter than R C = {neuron.resistance * neuron.capacitance:g} "
            "(model.neuron.resistance x capacitance) for the lapicque neuron",
        )
    _check_adaptive(cfg, problems)
    _check_sequence(cfg, problems, steps)


def _check_adaptive(cfg: ExperimentConfig, problems: _Problems) -> None:
    """adaptive_neurons: empty, or one count per layer within the layer's size."""
    model = cfg.model
    if (
        not model.adaptive_neurons
        or model.blocks
        or not problems.usable("model.adaptive_neurons", "model.layer_sizes")
    ):
        return
    if len(model.adaptive_neurons) != len(model.layer_sizes):
        problems.add(
            "model.adaptive_neurons",
            f"has {_count(len(model.adaptive_neurons), 'entry', 'entries')} but model.layer_sizes "
            f"has {_count(len(model.layer_sizes), 'layer', 'layers')}; give one count per layer "
            "or leave it empty (all neurons of alif layers adapt)",
        )
        return
    for k, (count, size) in enumerate(zip(model.adaptive_neurons, model.layer_sizes, strict=True)):
        if count > size:
            problems.add(f"model.adaptive_neurons[{k}]", f"is {count} but layer {k} has {size}")


def _check_sequence(cfg: ExperimentConfig, problems: _Problems, steps: int) -> None:
    """Sequential MNIST and the threshold-crossing encoder belong together."""
    encoding, name = cfg.dataset.encoding.type, cfg.dataset.name
    if not problems.usable("dataset.name", "dataset.encoding.type"):
        return
    if (name == SEQUENTIAL_DATASET) != (encoding == "threshold_crossing"):
        problems.add(
            "dataset.encoding.type",
            f"dataset {SEQUENTIAL_DATASET!r} and the encoding 'threshold_crossing' go together "
            f"(got dataset {name!r} with encoding {encoding!r})",
        )
    elif name == SEQUENTIAL_DATASET and steps < SEQUENCE_LENGTH:
        problems.add(
            "model.sim_time",
            f"gives {steps} steps but sequential MNIST presents {SEQUENCE_LENGTH} pixels, one per "
            f"step; set model.sim_time >= {SEQUENCE_LENGTH} x model.dt (plus the read-out steps)",
        )


def _check_blocks(cfg: ExperimentConfig, problems: _Problems) -> None:
    """A graph of blocks: trained by BPTT, a valid graph for the dataset, a read-out that fits
    its label layer."""
    model = cfg.model
    if not model.blocks or not problems.usable("model.blocks", "dataset", "model.neuron"):
        return
    rule = cfg.learning.rule
    if problems.usable("learning.rule") and rule != "bptt":
        problems.add(
            "model.blocks",
            f"graphs of blocks are trained with learning.rule 'bptt', not {rule!r} (first-spike "
            "rules and DEEP R take a stack: model.layer_sizes)",
        )
        return
    if cfg.dataset.name not in DATASET_SHAPES:
        return
    from snnexp.graph.build import graph_spec
    from snnexp.graph.spec import GraphError

    try:
        graph = graph_spec(cfg)
    except GraphError as err:
        for message in err.problems:
            problems.note(message)
        return
    spiking = graph.blocks[graph.output].params["spiking"]
    if not spiking and model.readout in ("spike_count", "first_spike"):
        problems.add(
            "model.readout",
            f"{model.readout!r} needs a spiking label layer; the last block has spiking: false, "
            "which is read as max_membrane or mean_membrane",
        )
