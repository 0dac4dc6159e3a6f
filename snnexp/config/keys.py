"""Dotted key paths (``model.neuron.tau_syn``): the schema's paths, reading and setting a value."""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterator
from typing import Any

from snnexp.config.problems import ConfigError, show
from snnexp.config.schema import ExperimentConfig

# building the config


@functools.cache
def field_hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a schema dataclass, in field order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def schema_paths(cls: type = ExperimentConfig, prefix: str = "") -> Iterator[str]:
    """Every key path of the schema, sections included."""
    for name, hint in field_hints(cls).items():
        path = join(prefix, name)
        yield path
        if dataclasses.is_dataclass(hint):
            yield from schema_paths(hint, path)


def join(prefix: str, key: Any) -> str:
    """A key path: ``prefix.key``, or ``key`` at the top level."""
    return f"{prefix}.{key}" if prefix else str(key)


def set_at(tree: dict[str, Any], path: str, value: Any) -> None:
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
                f"cannot set {path}: {where} is {show(tree)}, not a section with keys"
            )
    tree[leaf] = value


def value_at(cfg: ExperimentConfig, path: str) -> Any:
    """The value at a dotted key path."""
    value: Any = cfg
    for part in path.split("."):
        value = getattr(value, part)
    return value
