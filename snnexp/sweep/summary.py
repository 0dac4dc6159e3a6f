"""What a sweep (or any set of runs) achieved: each run's final numbers, read from its result
folder, and per point n, mean +- sd, min and max over its seeds.

Metrics of a run: the final savepoint's test accuracy, the final epoch's validation accuracy and
the mean validation accuracy over the last 10 % of epochs (at least one), all from the files the
run wrote (never the best epoch). Seconds: the training time the run's history.csv records (its
epochs with their validation; it survives interruptions); peak memory: the largest resident size
of the run's processes that the sweep recorded.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snnexp.plots.io import read_config, read_history, read_outputs, savepoint_dirs
from snnexp.run.files import HISTORY_FILE

METRICS = {
    "test_accuracy": "final test accuracy",
    "val_accuracy": "final validation accuracy",
    "val_accuracy_last10": "validation accuracy, mean over the last 10 % of epochs",
}
"""The accuracies summarised, with what each means."""
LAST_FRACTION = 0.1
STATISTICS = ("mean", "sd", "min", "max")


@dataclass
class RunResult:
    """The final numbers of one finished run."""

    name: str
    run_dir: Path
    epochs: np.ndarray
    val_curve: np.ndarray
    metrics: dict[str, float]
    seconds: float = math.nan
    peak_memory_mb: float = math.nan


def read_run_result(run_dir: Path, attempts: Sequence[Mapping[str, Any]] = ()) -> RunResult:
    """The numbers of a run that trained to its final epoch (its latest savepoint); raises
    FileNotFoundError / HistoryError for a folder that is not a finished run."""
    run_dir = Path(run_dir)
    history = read_history(run_dir / HISTORY_FILE)
    epochs, val = history["epoch"], history["val_accuracy"]
    savepoints = savepoint_dirs(run_dir)
    if not savepoints:
        raise FileNotFoundError(f"{run_dir} has no savepoint")
    final = max(savepoints)
    test = read_outputs(savepoints[final], "test")
    trained = (epochs >= 1) & (epochs <= final)
    last = max(1, math.ceil(LAST_FRACTION * final))
    window = trained & (epochs > final - last)
    metrics = {
        "test_accuracy": math.nan if test is None else float(test["accuracy"]),
        "val_accuracy": float(val[epochs == final][-1]) if (epochs == final).any() else math.nan,
        "val_accuracy_last10": float(np.mean(val[window])) if window.any() else math.nan,
    }
    return RunResult(
        name=run_dir.name,
        run_dir=run_dir,
        epochs=epochs[epochs <= final],
        val_curve=val[epochs <= final],
        metrics=metrics,
        seconds=float(np.nansum(history["seconds"][epochs <= final])),
        peak_memory_mb=max((float(a["peak_memory_mb"]) for a in attempts), default=math.nan),
    )


def is_finished(run_dir: Path) -> bool:
    """Whether a run folder holds the savepoint of its config's final epoch."""
    try:
        epochs = int(read_config(run_dir)["training"]["epochs"])
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return epochs in savepoint_dirs(run_dir)


def statistics(values: Sequence[float]) -> dict[str, float]:
    """mean, sample standard deviation (NaN for one value), min and max of the finite values."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return dict.fromkeys(STATISTICS, math.nan)
    return {
        "mean": float(finite.mean()),
        "sd": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


@dataclass
class PointSummary:
    """One point of a sweep (a setting of the swept keys) over its seeds."""

    point: str
    values: dict[str, Any]
    runs: list[RunResult] = field(default_factory=list)
    planned: int = 0

    @property
    def n(self) -> int:
        return len(self.runs)

    def metric(self, name: str) -> dict[str, float]:
        return statistics([run.metrics[name] for run in self.runs])

    def spread(self, name: str, digits: int = 2) -> str:
        """'97.17 ± 0.54 [96.40, 97.90]' (percent; the range with ``digits`` decimals, shown for
        more than one run)."""
        stats = self.metric(name)
        if self.n < 2 or not math.isfinite(stats["min"]):
            return percent(stats)
        return (
            f"{percent(stats)} [{100 * stats['min']:.{digits}f}, {100 * stats['max']:.{digits}f}]"
        )

    def seeds_text(self) -> str:
        """'10', or '3 of 10' while seeds are missing."""
        return f"{self.n}" + ("" if self.n == self.planned else f" of {self.planned}")

    def seconds(self) -> float:
        return statistics([run.seconds for run in self.runs])["mean"]

    def peak_memory_mb(self) -> float:
        return statistics([run.peak_memory_mb for run in self.runs])["max"]


def summary_columns(keys: Sequence[str]) -> list[str]:
    return [
        "point",
        *keys,
        "n",
        "planned",
        *(f"{metric}_{stat}" for metric in METRICS for stat in STATISTICS),
        "training_seconds_per_run",
        "peak_memory_mb",
    ]


def summary_csv(points: Sequence[PointSummary], keys: Sequence[str]) -> str:
    """summary.csv: one row per point, accuracies as fractions in full precision."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(summary_columns(keys))
    for point in points:
        row: list[Any] = [point.point, *(shown_value(point.values.get(key)) for key in keys)]
        row += [point.n, point.planned]
        for metric in METRICS:
            row += [_number(value) for value in point.metric(metric).values()]
        row += [_number(point.seconds()), _number(point.peak_memory_mb())]
        writer.writerow(row)
    return buffer.getvalue()


def shown_value(value: Any) -> str:
    """A swept value as written in a config (true, null, [120, 3]); text as it is."""
    return value if isinstance(value, str) else json.dumps(value)


def _number(value: float) -> str:
    return "" if not math.isfinite(value) else repr(value)


def percent(stats: Mapping[str, float]) -> str:
    """'97.17 ± 0.54' (percent; no ± for a single run, '—' for none)."""
    if not math.isfinite(stats["mean"]):
        return "—"
    if not math.isfinite(stats["sd"]):
        return f"{100 * stats['mean']:.2f}"
    return f"{100 * stats['mean']:.2f} ± {100 * stats['sd']:.2f}"


def summary_markdown(
    points: Sequence[PointSummary], keys: Sequence[str], title: str, notes: Sequence[str] = ()
) -> str:
    """summary.md: a table with mean ± sd [min, max] (percent) per point, then ``notes``."""
    header = ["point", *keys, "n", *METRICS, "training seconds per run", "peak memory"]
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for point in points:
        cells = [point.point, *(shown_value(point.values.get(key)) for key in keys)]
        cells.append(point.seeds_text())
        cells += [point.spread(metric) for metric in METRICS]
        seconds, memory = point.seconds(), point.peak_memory_mb()
        cells.append(f"{seconds:.0f} s" if math.isfinite(seconds) else "—")
        cells.append(f"{memory:.0f} MB" if math.isfinite(memory) else "—")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Accuracies in percent: mean ± sample sd over seeds [min, max]; "
        + "; ".join(f"{name}: {meaning}" for name, meaning in METRICS.items())
        + ".",
    ]
    lines += ["", *notes] if notes else []
    return "\n".join(lines) + "\n"
