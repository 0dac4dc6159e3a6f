"""A sweep file and the runs it stands for.

A sweep file is YAML::

    config: yin_yang.yaml             # the base config (relative to the sweep file, else the cwd)
    grid:                             # key (as in --set) -> values; every combination is a point
      training.weight_bumping.skip_step: [true, false]
    random:                           # optional: points drawn from distributions
      samples: 8                      # how many (one grid point each, when grid is given too)
      seed: 0
      keys:
        learning.optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}
        training.batch_size: {choice: [50, 150]}
        model.weight_std: {uniform: [0.5, 1.0]}   # also: {int_range: [LOW, HIGH]} (inclusive)
    search: {sampler: tpe, trials: 8, objective: val_accuracy, direction: maximize}
    seeds: 10                         # the config's seeds plus --seed 1 .. 9; or a list [1, 2, 3]

``search`` (Optuna, optional extra ``sweep``) replaces the random draws by a TPE search over the
``random.keys`` distributions. Every point x seed is one ordinary run.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snnexp.config import ConfigError
from snnexp.config.parse import read_yaml
from snnexp.config.problems import Problems, close_match, show

SWEEP_KEYS = ("config", "grid", "random", "search", "seeds")
RANDOM_KEYS = ("samples", "seed", "keys")
SEARCH_KEYS = ("sampler", "trials", "objective", "direction", "seed", "startup_trials")
DISTRIBUTIONS = ("uniform", "log_uniform", "choice", "int_range")
OBJECTIVES = ("val_accuracy", "val_accuracy_last10", "test_accuracy")
"""What a search maximises or minimises, as the mean over seeds: the final validation accuracy,
the mean validation accuracy over the last 10 % of epochs, or the final test accuracy."""
SAMPLERS = ("tpe",)
CONFIG_SEEDS = None
"""The seed entry that stands for the config's own training.seeds (no --seed)."""


@dataclass(frozen=True)
class Distribution:
    """One key's distribution: ``uniform`` / ``log_uniform`` on [low, high], ``int_range`` on
    the integers low .. high (inclusive), ``choice`` among ``values``."""

    kind: str
    values: tuple[Any, ...]

    def draw(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return self.values[int(rng.integers(len(self.values)))]
        low, high = self.values
        if self.kind == "uniform":
            return float(rng.uniform(low, high))
        if self.kind == "log_uniform":
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        return int(rng.integers(low, high + 1))


@dataclass(frozen=True)
class Search:
    """An Optuna search over the ``random.keys`` distributions."""

    sampler: str = "tpe"
    trials: int = 8
    objective: str = "val_accuracy"
    direction: str = "maximize"
    seed: int = 0
    startup_trials: int = 4
    """Trials drawn at random before TPE models the results (Optuna's default is 10)."""


@dataclass
class SweepSpec:
    """A parsed sweep file."""

    source: Path
    config: Path
    grid: dict[str, list[Any]] = field(default_factory=dict)
    samples: int = 0
    random_seed: int = 0
    distributions: dict[str, Distribution] = field(default_factory=dict)
    search: Search | None = None
    seeds: list[int | None] = field(default_factory=lambda: [CONFIG_SEEDS])

    @property
    def swept_keys(self) -> list[str]:
        return [*self.grid, *self.distributions]

    def fixed_points(self) -> list[dict[str, Any]]:
        """The points of a sweep without search: the grid's combinations, each with
        ``samples`` random draws when ``random`` is given (draws from ``random.seed``)."""
        combos = [
            dict(zip(self.grid, values, strict=True))
            for values in itertools.product(*self.grid.values())
        ]
        if not self.distributions:
            return combos
        rng = np.random.default_rng(self.random_seed)
        return [
            {**combo, **{key: dist.draw(rng) for key, dist in self.distributions.items()}}
            for combo in combos
            for _ in range(self.samples)
        ]


def setting(key: str, value: Any) -> str:
    """``key=value`` for ``--set`` (the value as JSON, which YAML reads back unchanged)."""
    return f"{key}={json.dumps(value)}"


def point_settings(point: Mapping[str, Any]) -> list[str]:
    return [setting(key, value) for key, value in point.items()]


def read_sweep(path: Path, base_config: Path | None = None) -> SweepSpec:
    """Read and check a sweep file; one ConfigError lists every problem. ``base_config``
    replaces the file's ``config`` (a resumed sweep reads its own copy)."""
    data = read_yaml(Path(path), kind="sweep")
    source = str(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a sweep file must be a mapping with config, grid, seeds, ...")
    problems = Problems()
    for key in data:
        if key not in SWEEP_KEYS:
            hint = close_match(key, SWEEP_KEYS)
            problems.add(
                str(key),
                "unknown sweep key"
                + (f"; did you mean {hint!r}?" if hint else f"; valid: {', '.join(SWEEP_KEYS)}"),
            )
    config = base_config or _base_config(data.get("config"), path, problems)
    spec = SweepSpec(source=Path(path), config=config)
    spec.grid = _grid(data.get("grid"), problems)
    _random(data.get("random"), spec, problems)
    spec.search = _search(data.get("search"), spec, problems)
    spec.seeds = _seeds(data.get("seeds", 1), problems)
    if not spec.grid and not spec.distributions and len(spec.seeds) < 2:
        problems.note("the sweep has one run only: give grid, random or seeds (a count >= 2)")
    problems.raise_if_any(source)
    return spec


def _base_config(value: Any, sweep_file: Path, problems: Problems) -> Path:
    if not isinstance(value, str) or not value:
        problems.add("config", f"must be the path of the base config, got {show(value)}")
        return Path()
    candidates = [Path(sweep_file).parent / value, Path(value)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    problems.add(
        "config",
        f"{value!r} not found next to the sweep file ({candidates[0]}) nor from the current "
        f"folder ({Path.cwd()})",
    )
    return Path(value)


def _grid(value: Any, problems: Problems) -> dict[str, list[Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add("grid", f"must map config keys to lists of values, got {show(value)}")
        return {}
    grid = {}
    for key, values in value.items():
        if not isinstance(values, list) or not values:
            problems.add(f"grid.{key}", f"must be a non-empty list of values, got {show(values)}")
            continue
        grid[str(key)] = values
    return grid


def _random(value: Any, spec: SweepSpec, problems: Problems) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        problems.add("random", f"must be a mapping with samples, seed, keys; got {show(value)}")
        return
    for key in value:
        if key not in RANDOM_KEYS:
            problems.add(f"random.{key}", f"unknown key; valid: {', '.join(RANDOM_KEYS)}")
    spec.samples = _count(value.get("samples", 0), "random.samples", problems, minimum=0)
    spec.random_seed = _count(value.get("seed", 0), "random.seed", problems, minimum=0)
    keys = value.get("keys")
    if not isinstance(keys, Mapping) or not keys:
        problems.add("random.keys", f"must map config keys to distributions, got {show(keys)}")
        return
    for key, dist in keys.items():
        parsed = _distribution(dist, f"random.keys.{key}", problems)
        if parsed is not None:
            spec.distributions[str(key)] = parsed
        if key in spec.grid:
            problems.add(f"random.keys.{key}", "is swept by grid already")


def _distribution(value: Any, path: str, problems: Problems) -> Distribution | None:
    if not isinstance(value, Mapping) or len(value) != 1:
        problems.add(path, f"must be one of {{{': ..., '.join(DISTRIBUTIONS)}: ...}}")
        return None
    ((kind, args),) = value.items()
    if kind not in DISTRIBUTIONS:
        hint = close_match(kind, DISTRIBUTIONS)
        problems.add(
            path,
            f"unknown distribution {kind!r}; "
            + (f"did you mean {hint!r}?" if hint else f"valid: {', '.join(DISTRIBUTIONS)}"),
        )
        return None
    if kind == "choice":
        if not isinstance(args, list) or not args:
            problems.add(path, f"choice needs a non-empty list of values, got {show(args)}")
            return None
        return Distribution(kind, tuple(args))
    numbers = _bounds(args)
    if numbers is None:
        problems.add(path, f"{kind} needs [LOW, HIGH] with LOW < HIGH, got {show(args)}")
        return None
    low, high = numbers
    if kind == "log_uniform" and low <= 0:
        problems.add(path, f"log_uniform needs 0 < LOW, got {show(args)}")
        return None
    if kind == "int_range":
        if low != int(low) or high != int(high):
            problems.add(path, f"int_range needs whole numbers, got {show(args)}")
            return None
        low, high = int(low), int(high)
    return Distribution(kind, (low, high))


def _bounds(args: Any) -> tuple[float, float] | None:
    if not isinstance(args, list) or len(args) != 2:
        return None
    try:
        low, high = (float(arg) for arg in args)
    except (TypeError, ValueError):
        return None
    if isinstance(args[0], bool) or isinstance(args[1], bool) or not low < high:
        return None
    return low, high


def _search(value: Any, spec: SweepSpec, problems: Problems) -> Search | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.add("search", f"must be a mapping ({', '.join(SEARCH_KEYS)}), got {show(value)}")
        return None
    for key in value:
        if key not in SEARCH_KEYS:
            problems.add(f"search.{key}", f"unknown key; valid: {', '.join(SEARCH_KEYS)}")
    search = Search(
        sampler=_choice(value.get("sampler", "tpe"), SAMPLERS, "search.sampler", problems),
        trials=_count(value.get("trials", 8), "search.trials", problems, minimum=1),
        objective=_choice(
            value.get("objective", "val_accuracy"), OBJECTIVES, "search.objective", problems
        ),
        direction=_choice(
            value.get("direction", "maximize"),
            ("maximize", "minimize"),
            "search.direction",
            problems,
        ),
        seed=_count(value.get("seed", 0), "search.seed", problems, minimum=0),
        startup_trials=_count(
            value.get("startup_trials", 4), "search.startup_trials", problems, minimum=1
        ),
    )
    if not spec.distributions:
        problems.add("search", "searches the distributions of random.keys; give random.keys")
    if spec.grid:
        problems.add(
            "search",
            "cannot be combined with grid: write those keys as choice "
            "distributions under random.keys",
        )
    return search


def _seeds(value: Any, problems: Problems) -> list[int | None]:
    if isinstance(value, list):
        if not value or not all(_is_seed(seed) for seed in value) or len(set(value)) < len(value):
            problems.add("seeds", f"must be distinct seeds 0 .. 2**32 - 1, got {show(value)}")
            return [CONFIG_SEEDS]
        return list(value)
    count = _count(value, "seeds", problems, minimum=1)
    return [CONFIG_SEEDS, *range(1, count)]


def _is_seed(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32


def _count(value: Any, path: str, problems: Problems, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problems.add(path, f"must be a whole number >= {minimum}, got {show(value)}")
        return minimum
    return value


def _choice(value: Any, choices: Sequence[str], path: str, problems: Problems) -> str:
    if value not in choices:
        problems.add(path, f"must be one of {', '.join(choices)}, got {show(value)}")
        return choices[0]
    return str(value)
