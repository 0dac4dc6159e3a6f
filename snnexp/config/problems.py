"""Collecting the problems of a config and phrasing them: every problem names its key path (or
the legacy key name) and the fix; :class:`ConfigError` carries all of them at once."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """An unreadable or invalid config. The message is complete and meant for the user.

    ``problems`` lists the individual problems (one per line of the message).
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


# --------------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------------
# collecting problems


@dataclass
class Problems:
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


def show(value: Any) -> str:
    """A value as quoted in messages: its repr (shortened) and its type."""
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def counted(number: int, singular: str, plural: str) -> str:
    """'1 layer', '2 layers'."""
    return f"{number} {singular if number == 1 else plural}"


def close_match(word: Any, choices: Sequence[str]) -> str | None:
    """The choice closest to ``word`` (ignoring case), or None when nothing is close."""
    by_lower = {choice.lower(): choice for choice in choices}
    found = difflib.get_close_matches(str(word).lower(), list(by_lower), n=1)
    return by_lower[found[0]] if found else None


def unknown_key(shown: str, key: str, valid: Sequence[str], where: str, moved: str = "") -> str:
    """The message for an unknown key: a close match, else its right section, else the keys."""
    close = close_match(key, valid)
    if close:
        return f"unknown key '{shown}'; did you mean '{close}'?"
    if moved:
        return f"unknown key '{shown}'; did you mean '{moved}'? (it belongs in another section)"
    return f"unknown key '{shown}'; valid keys {where}: {', '.join(valid)}"
