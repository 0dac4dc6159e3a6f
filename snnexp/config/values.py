"""Reading a YAML value as the type of its schema field.

- an integer is accepted where a number is expected; ``true``/``false`` never count as numbers;
- a string that spells a finite number is accepted where a number is expected, because YAML 1.1
  (PyYAML) reads ``1e-3`` (no dot) as a string.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from typing import Any


class Mismatch(Exception):
    """A value does not have the expected type; ``where`` locates it inside lists."""

    def __init__(self, expected: str, value: Any, where: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.where = where


INVALID = object()
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
# Keys whose input may take a shorter form than the stored type; _normalize expands it.
INPUT_HINTS: dict[str, Any] = {
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


def convert(hint: Any, value: Any) -> Any:
    """``value`` read as type ``hint``; raises Mismatch when it is not one."""
    origin = typing.get_origin(hint)
    if origin in _UNIONS:
        for option in typing.get_args(hint):
            try:
                return convert(option, value)
            except Mismatch:
                continue
        raise Mismatch(_describe(hint), value)
    if origin is list:
        return _convert_list(hint, value)
    if hint is float:
        return to_float(value)
    if hint is dict and isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise Mismatch(_describe(hint), value)


def _convert_list(hint: Any, value: Any) -> list[Any]:
    """A list with every item read as the item type of ``hint``."""
    if not isinstance(value, (list, tuple)):
        raise Mismatch(_describe(hint), value)
    item_hint = typing.get_args(hint)[0]
    items = []
    for index, item in enumerate(value):
        try:
            items.append(convert(item_hint, item))
        except Mismatch as err:
            raise Mismatch(err.expected, err.value, f"[{index}]{err.where}") from None
    return items


def to_float(value: Any) -> float:
    """A finite float from an int, a float or a numeric string (never from a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Mismatch("a number", value)
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise Mismatch("a number", value) from None
    if not math.isfinite(number):
        raise Mismatch("a finite number", value)
    return number


# --------------------------------------------------------------------------------------------
