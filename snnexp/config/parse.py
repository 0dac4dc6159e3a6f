"""Reading a config: the YAML file, ``--set`` overrides, the new or the legacy format, into a
validated :class:`~snnexp.config.schema.ExperimentConfig`; and writing it back as YAML."""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from snnexp.choices import FIRST_SPIKE_BLOCK
from snnexp.config.checks import validate
from snnexp.config.keys import field_hints, join, schema_paths, set_at
from snnexp.config.legacy import LEGACY_LABELS, LEGACY_SECTIONS, legacy_to_new
from snnexp.config.problems import ConfigError, Problems, show, unknown_key
from snnexp.config.schema import DATASET_SHAPES, SEQUENTIAL_DATASET, ExperimentConfig, ModelConfig
from snnexp.config.values import INPUT_HINTS, INVALID, Mismatch, convert

# public functions


IGNORED_TOP_KEYS = ("snnexp_version",)
"""Top-level keys of a resolved config that are not settings."""


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read, fill in and validate the config file at ``path`` (new or legacy format).

    ``overrides`` are ``key.path=value`` settings put into the file's content before it is
    read (see :func:`apply_overrides`). ``name`` defaults to the file's stem. Raises
    :class:`ConfigError` for a missing, empty or malformed file, a malformed override and for
    every invalid value.
    """
    path = Path(path)
    data = read_yaml(path)
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
        set_at(tree, key, value)
    return tree


def config_from_dict(data: Mapping[str, Any], source: str = "<config>") -> ExperimentConfig:
    """Build a validated config from a (possibly partial) new-format mapping.

    ``source`` names the origin in error messages. A top-level ``snnexp_version`` key (written
    into resolved configs) is ignored.
    """
    _require_mapping(data, source)
    return _build({k: v for k, v in data.items() if k not in IGNORED_TOP_KEYS}, source, Problems())


def legacy_config_from_dict(data: Mapping[str, Any], source: str = "<config>") -> ExperimentConfig:
    """Build a validated config from the published first-spike code's config format."""
    _require_mapping(data, source)
    problems = Problems(labels=LEGACY_LABELS)
    return _build(legacy_to_new(data, problems), source, problems)


def is_legacy_config(data: Any) -> bool:
    """Whether ``data`` is in the published first-spike code's format.

    True when it has a legacy section (neuron_params, network_layout, training_params), or when
    ``dataset`` is a plain name and no new-format section is present.
    """
    if not isinstance(data, Mapping):
        return False
    if any(key in data for key in LEGACY_SECTIONS):
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


def read_yaml(path: Path, kind: str = "config") -> Any:
    """The parsed YAML content of ``path`` (unique keys, bounded alias expansion); ConfigError
    when it is absent, unreadable, malformed or empty. ``kind`` names the file in messages
    ("config", "sweep")."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{kind} file not found: {path}\n"
            f"hint: check the spelling; a relative path starts from the current folder {Path.cwd()}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; give the path of a YAML {kind} file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {kind} file {path}: {err}") from None
    try:
        data = _safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_error_message(path, err)) from None
    if data is None:
        raise ConfigError(
            f"{kind} file is empty: {path}; write at least one section, "
            + (
                "e.g. 'training: {epochs: 10}' (every other key has a default)"
                if kind == "config"
                else "see its format in the README"
            )
        )
    return data


MAX_YAML_VALUES = 1_000_000
"""The most values a config may hold once its aliases are expanded (a few hundred in practice);
nested aliases ("billion laughs") would otherwise expand to gigabytes while being read."""


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (YAML says keys are
    unique; PyYAML would keep the last silently, e.g. a second ``training:`` section)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"the key {key!r} is given twice (first on line {seen[key].line + 1}); "
                    "keep one of them",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """The number of values ``node`` stands for with every alias expanded (memoised per node,
    so shared subtrees are counted without expanding them)."""
    if id(node) not in sizes:
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        sizes[id(node)] = 0
        sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


def _safe_load(text: str) -> Any:
    """``yaml.safe_load`` with unique keys, refusing documents that expand to more than
    MAX_YAML_VALUES values before any of them is built."""
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_YAML_VALUES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"the document expands to {size:,} values through its aliases (at most "
                f"{MAX_YAML_VALUES:,}); write the values out instead of nesting aliases",
                node.start_mark,
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


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
            f"training), got {show(data)}"
        )


def _build(data: Mapping[str, Any], source: str, problems: Problems) -> ExperimentConfig:
    """Parse, expand and validate ``data``; raise one ConfigError listing every problem."""
    cfg = _parse_section(ExperimentConfig, data, "", problems)
    _normalize(cfg)
    validate(cfg, problems)
    problems.raise_if_any(source)
    return cfg


def _parse_section(cls: type, data: Any, path: str, problems: Problems) -> Any:
    """Build dataclass ``cls`` from ``data``; unreadable entries are reported and left default."""
    if data is None:
        return cls()
    if not isinstance(data, Mapping):
        problems.reject(path, f"expected a section (a mapping of keys to values), got {show(data)}")
        return cls()
    hints = field_hints(cls)
    values = {}
    for key, value in data.items():
        key_path = join(path, key)
        if key in hints:
            parsed = _parse_field(hints[key], value, key_path, problems)
            if parsed is not INVALID:
                values[key] = parsed
        else:
            problems.note(_unknown_section_key(key, path, list(hints), problems))
    return cls(**values)


def _unknown_section_key(key: Any, path: str, valid: list[str], problems: Problems) -> str:
    """The unknown-key message for a key of the new format, with a suggestion where possible.

    A key that exists in another section is pointed there, except in a legacy config, whose
    user knows other key paths.
    """
    same_name = (p for p in schema_paths() if p.rsplit(".", 1)[-1] == str(key))
    moved = "" if problems.labels else next(same_name, "")
    where = f"in '{problems.name(path)}'" if path else "at the top level"
    return unknown_key(problems.name(join(path, key)), str(key), valid, where, moved)


def _parse_field(hint: Any, value: Any, path: str, problems: Problems) -> Any:
    """One field's value read as ``hint``, or INVALID after reporting why it cannot be."""
    if dataclasses.is_dataclass(hint):
        return _parse_section(hint, value, path, problems)
    try:
        return convert(INPUT_HINTS.get(path, hint), value)
    except Mismatch as err:
        problems.reject(path + err.where, f"expected {err.expected}, got {show(err.value)}")
        return INVALID


def _layers_from_first_spike_blocks(model: ModelConfig) -> None:
    """A graph of ``first_spike`` blocks is the long form of a first-spike stack: its blocks
    give ``layer_sizes``, ``weight_mean``, ``weight_std`` and ``bias_times``, so that both forms
    build the same network. Left alone unless every block is a readable first_spike block (the
    graph checks report the rest)."""
    blocks = model.blocks
    if not blocks or not all(
        isinstance(b, dict) and b.get("type") == FIRST_SPIKE_BLOCK and "features" in b
        for b in blocks
    ):
        return
    model.layer_sizes = [b["features"] for b in blocks]
    model.weight_mean = [b.get("weight_mean") for b in blocks]
    model.weight_std = [b.get("weight_std") for b in blocks]
    model.bias_times = [b.get("bias_times", []) for b in blocks]


def _normalize(cfg: ExperimentConfig) -> None:
    """Expand the short input forms: per-layer lists from first_spike blocks, per-layer
    broadcasts and the 'none' scheduler."""
    _layers_from_first_spike_blocks(cfg.model)
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
