"""Paper-style figures of a result folder, drawn by ``snnexp eval``.

Plots only read what training saved (``config.yaml``, ``history.csv``, and the
``checkpoint.pt`` and ``outputs_<split>.npz`` of the savepoints); they never re-run a network.
Each figure family lives in its own module with the numbers it shows computed by pure
functions, and a ``jobs(run)`` that lists the figures that apply to a savepoint
(:mod:`snnexp.plots.run`); :data:`FIGURE_FAMILIES` registers the families, in the order their
figures are drawn. Figure names (file stems) by family:

- ``curves``: ``training_curves``, ``training_curves_log_error`` (lr steps marked),
  ``lr_and_bumps`` (learning rate and weight-bumping events per epoch), ``validation_by_iteration``
  (runs with training.validate_every)
- ``confusion``: ``confusion_<split>``; ``per_class_accuracy_<split>`` (not Yin-Yang)
- ``spike_times``: ``output_times_<split>`` (sorted by true class), ``output_times_over_training``
- ``histograms``: ``spike_time_histograms_<split>`` (output: correct vs wrong; hidden layers)
- ``weights``: ``weight_histograms``, ``weight_matrices`` (from ``checkpoint.pt``)
- ``yin_yang``: ``yin_yang_map_<split>``, ``yin_yang_label_times_<split>``,
  ``yin_yang_time_difference_<split>``, ``yin_yang_hidden_times_<split>``
- ``digits``: ``examples_<split>`` (only where a savepoint stores the images)
- ``activity`` (time-stepped runs): ``output_scores_<split>`` (read-out scores sorted by true
  class, in place of the output times), ``firing_rates_<split>``, ``spike_raster`` and
  ``membrane_traces`` (a test sample traced at the savepoint)
- ``rewiring`` (DEEP R runs): ``connectivity`` (active connections and rewiring events per
  epoch), ``sign_maps`` (excitatory / inhibitory / dormant synapses of each matrix)
- ``summary``: ``summary`` (one page, config essentials in the caption)
- ``comparison``: ``untrained_vs_trained`` (``epoch_0`` against the savepoint)
- ``graph`` (graphs of blocks): ``graph`` (the blocks in execution order, their edges, delays
  and cycles)
- ``feature_maps`` (conv graphs): ``feature_maps`` (per image-shaped neurons block of a traced
  test sample: spikes per channel over time, and where in the first channels' maps they fell)
- ``conversion`` (converted runs): ``conversion_accuracy_<split>`` (SNN accuracy against the
  steps, one curve per code, the ANN as a line), ``conversion_spikes_<split>`` (spikes per
  layer and sample), ``conversion_operations_<split>`` (synaptic operations against the ANN's
  MACs)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import numpy as np

from snnexp.errors import SnnexpError
from snnexp.plots import (
    activity,
    comparison,
    confusion,
    conversion,
    curves,
    digits,
    feature_maps,
    graph,
    histograms,
    rewiring,
    spike_times,
    summary,
    weights,
    yin_yang,
)
from snnexp.plots.io import (
    HistoryError,
    config_value,
    history_arrays,
    read_config,
    read_history,
    savepoint_epoch,
)
from snnexp.plots.run import FigureJob, Run
from snnexp.plots.style import FORMATS, save_figure
from snnexp.run.files import FIGURES_FOLDER, HISTORY_FILE

__all__ = [
    "FIGURE_FAMILIES",
    "FORMATS",
    "UnknownFigureError",
    "check_figure_names",
    "figure_names",
    "render_figures",
]

logger = logging.getLogger(__name__)

FIGURE_FAMILIES: tuple[ModuleType, ...] = (
    curves,
    confusion,
    spike_times,
    activity,
    histograms,
    yin_yang,
    digits,
    weights,
    rewiring,
    summary,
    comparison,
    graph,
    feature_maps,
    conversion,
)
"""Every figure family: a module with ``jobs(run: Run) -> list[FigureJob]``."""


class UnknownFigureError(SnnexpError):
    """``--only`` names a figure that this savepoint does not have."""


def check_figure_names(only: Iterable[str], valid: Iterable[str]) -> None:
    """Raise :class:`UnknownFigureError` naming every entry of ``only`` not in ``valid``."""
    valid = sorted(set(valid))
    unknown = [name for name in only if name not in valid]
    if unknown:
        raise UnknownFigureError(
            f"unknown figure name(s): {', '.join(unknown)}; this savepoint has: {', '.join(valid)}"
        )


def figure_names(run_dir: Path, epoch_dir: Path) -> list[str]:
    """Names (file stems) of every figure that applies to the savepoint ``epoch_dir``."""
    return [job.name for job in _plan(Path(run_dir), Path(epoch_dir))]


def render_figures(
    run_dir: Path,
    epoch_dir: Path,
    out_dir: Path | None = None,
    *,
    fmt: str = "png",
    only: Iterable[str] | None = None,
) -> list[Path]:
    """Draw every figure that applies to the savepoint ``epoch_dir`` of the run ``run_dir``.

    Figures go to ``out_dir`` (default ``epoch_dir / "figures"``) as ``<name>.<fmt>`` (``fmt``
    one of :data:`FORMATS`); ``only`` restricts them to the given names (unknown names raise
    :class:`UnknownFigureError` listing the valid ones). Returns the written paths. Figures
    whose data was not saved are skipped with an info log, figures whose data cannot be drawn
    (e.g. weights beyond any finite bin width) with a warning.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    run_dir, epoch_dir = Path(run_dir), Path(epoch_dir)
    jobs = _plan(run_dir, epoch_dir)
    if only is not None:
        only = list(only)
        check_figure_names(only, [job.name for job in jobs])
        jobs = [job for job in jobs if job.name in only]
    out_dir = epoch_dir / FIGURES_FOLDER if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for job in jobs:
        try:
            figure = job.build()
        except (ValueError, OverflowError, FloatingPointError) as error:
            logger.warning("%s not drawn: its data cannot be plotted (%s)", job.name, error)
            continue
        written.append(save_figure(figure, out_dir / f"{job.name}.{fmt}"))
    return written


def _history(run_dir: Path, epoch_dir: Path) -> dict[str, np.ndarray]:
    """The run's history.csv; if it is damaged, the history saved in the savepoint (up to its
    epoch) with a warning."""
    try:
        return read_history(run_dir / HISTORY_FILE)
    except HistoryError as error:
        from snnexp.run.results import load_checkpoint

        logger.warning(
            "%s; the training curves are drawn from the history saved in %s", error, epoch_dir.name
        )
        return history_arrays(load_checkpoint(epoch_dir)["history"])


def _plan(run_dir: Path, epoch_dir: Path) -> list[FigureJob]:
    """Every family's figures of the savepoint, in registry order."""
    config = read_config(run_dir)
    if not epoch_dir.is_dir():
        raise FileNotFoundError(f"savepoint folder {epoch_dir} does not exist")
    history = _history(run_dir, epoch_dir)
    epoch = savepoint_epoch(epoch_dir)
    heading = str(config_value(config, "name", run_dir.name))
    if epoch is not None:
        heading += f", epoch {epoch}"
    run = Run(run_dir, epoch_dir, config, history, epoch, heading)
    return [job for family in FIGURE_FAMILIES for job in family.jobs(run)]
