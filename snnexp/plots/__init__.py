"""Paper-style figures of a result folder, drawn by ``snnexp eval``.

Plots only read what training saved (``config.yaml``, ``history.csv``, and the
``checkpoint.pt`` and ``outputs_<split>.npz`` of the savepoints); they never re-run a network.
Each figure family lives in its own module with the numbers it shows computed by pure
functions. Figure names (file stems) by family:

- ``curves``: ``training_curves``, ``training_curves_log_error`` (lr steps marked),
  ``lr_and_bumps`` (learning rate and weight-bumping events per epoch)
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
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from snnexp.choices import SPLITS
from snnexp.config import TIME_STEPPED_RULES
from snnexp.errors import SnnexpError
from snnexp.plots.activity import (
    hidden_counts_or_means,
    plot_firing_rates,
    plot_membrane_traces,
    plot_spike_raster,
    trace_layers,
)
from snnexp.plots.comparison import SavepointPanels, plot_comparison
from snnexp.plots.confusion import (
    NO_SPIKE_LABEL,
    TIE_LABEL,
    confusion_matrix,
    plot_confusion,
    plot_per_class_accuracy,
)
from snnexp.plots.curves import plot_curves, plot_lr_and_bumps
from snnexp.plots.digits import image_side, plot_examples
from snnexp.plots.histograms import hidden_layers, plot_spike_time_histograms
from snnexp.plots.io import (
    config_value,
    label_outputs,
    read_config,
    read_history,
    read_outputs,
    savepoint_dirs,
    savepoint_epoch,
)
from snnexp.plots.rewiring import matrix_names, plot_connectivity, plot_sign_maps, sign_map
from snnexp.plots.spike_times import (
    OUTPUT_TIME_LABEL,
    plot_output_times,
    plot_output_times_over_training,
    sorted_output_stats,
)
from snnexp.plots.style import FORMATS, class_names, save_figure
from snnexp.plots.summary import config_caption, plot_summary
from snnexp.plots.weights import layer_weights, plot_weight_histograms, plot_weight_matrices
from snnexp.plots.yin_yang import (
    pick_hidden_neurons,
    plot_hidden_time_maps,
    plot_label_time_maps,
    plot_time_difference_map,
    plot_yin_yang_map,
)
from snnexp.run.files import CHECKPOINT_FILE, FIGURES_FOLDER, HISTORY_FILE, outputs_file

__all__ = ["FORMATS", "UnknownFigureError", "check_figure_names", "figure_names", "render_figures"]

logger = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "training set", "val": "validation set", "test": "test set"}
SCORE_LABEL = "read-out score"
HIDDEN_MAP_NEURONS = 6


class UnknownFigureError(SnnexpError):
    """``--only`` names a figure that this savepoint does not have."""


@dataclass(frozen=True)
class FigureJob:
    """One figure to draw: its name (the file stem) and how to build it."""

    name: str
    build: Callable[[], Figure]


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
    whose data was not saved are skipped with an info log.
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
    return [save_figure(job.build(), out_dir / f"{job.name}.{fmt}") for job in jobs]


@dataclass
class _Run:
    """What the figures of one savepoint read, loaded once."""

    run_dir: Path
    epoch_dir: Path
    config: dict[str, Any]
    history: dict[str, np.ndarray]
    epoch: int | None
    heading: str

    @functools.cached_property
    def outputs(self) -> dict[str, dict[str, np.ndarray]]:
        found = {}
        for split in SPLITS:
            outputs = read_outputs(self.epoch_dir, split)
            if outputs is None or len(outputs["labels"]) == 0:
                logger.info("no %s outputs in %s: skipping its figures", split, self.epoch_dir)
            else:
                found[split] = outputs
        return found

    @property
    def dataset(self) -> str:
        return str(config_value(self.config, "dataset.name", ""))

    @property
    def main_split(self) -> str | None:
        """The split of the summary and comparison figures: test, else val, else train."""
        return next((s for s in ("test", "val", "train") if s in self.outputs), None)

    def names(self, n_classes: int) -> list[str]:
        return class_names(self.dataset, n_classes)

    @property
    def time_stepped(self) -> bool:
        """Whether the run is a time-stepped (BPTT) one: its label outputs are scores."""
        return config_value(self.config, "learning.rule") in TIME_STEPPED_RULES

    @property
    def output_name(self) -> str:
        """File-stem stem of the sorted label-output figures."""
        return "output_scores" if self.time_stepped else "output_times"

    @property
    def output_label(self) -> str:
        return SCORE_LABEL if self.time_stepped else OUTPUT_TIME_LABEL

    @property
    def undecided_label(self) -> str:
        """Heading of the confusion matrices' column of samples without a prediction."""
        return TIE_LABEL if self.time_stepped else NO_SPIKE_LABEL


def _plan(run_dir: Path, epoch_dir: Path) -> list[FigureJob]:
    config = read_config(run_dir)
    history = read_history(run_dir / HISTORY_FILE)
    if not epoch_dir.is_dir():
        raise FileNotFoundError(f"savepoint folder {epoch_dir} does not exist")
    epoch = savepoint_epoch(epoch_dir)
    heading = str(config_value(config, "name", run_dir.name))
    if epoch is not None:
        heading += f", epoch {epoch}"
    run = _Run(run_dir, epoch_dir, config, history, epoch, heading)
    jobs = _curve_jobs(run)
    for split, outputs in run.outputs.items():
        jobs += _split_jobs(run, split, outputs)
    jobs += _weight_jobs(run)
    jobs += _savepoint_jobs(run)
    if config_value(run.config, "model.blocks"):
        jobs += _graph_jobs(run)
    return jobs


def _graph_jobs(run: _Run) -> list[FigureJob]:
    """The drawing of the run's graph of blocks (rebuilt from its config.yaml) and, where the
    test split traced a sample through image-shaped neurons blocks, their feature maps."""
    from snnexp.config import config_from_dict
    from snnexp.graph.build import graph_spec
    from snnexp.plots.feature_maps import feature_map_blocks, plot_feature_maps
    from snnexp.plots.graph import plot_graph

    graph = graph_spec(config_from_dict(run.config))
    jobs = [FigureJob("graph", lambda: plot_graph(graph, title=run.heading))]
    outputs = run.outputs.get("test", {})
    blocks = feature_map_blocks(graph, outputs)
    if blocks:
        dt = float(config_value(run.config, "model.dt", 1.0))
        label = run.names(label_outputs(outputs)[1].shape[1])[int(outputs["trace_labels"][0])]
        jobs.append(
            FigureJob(
                "feature_maps",
                lambda: plot_feature_maps(blocks, dt, label=label, title=run.heading),
            )
        )
    return jobs


def _curve_jobs(run: _Run) -> list[FigureJob]:
    history = run.history
    if len(history["epoch"]) == 0:
        logger.info("history.csv has no epochs yet: skipping the training curves")
        return []
    loss_name = config_value(run.config, "learning.loss.type")
    title = str(config_value(run.config, "name", "")) or None
    jobs = [
        FigureJob(
            name,
            functools.partial(
                plot_curves,
                history,
                log_error=log_error,
                loss_name=loss_name,
                marked_epoch=run.epoch,
                title=title,
            ),
        )
        for log_error, name in ((False, "training_curves"), (True, "training_curves_log_error"))
    ]
    if "lr" in history:
        jobs.append(
            FigureJob("lr_and_bumps", functools.partial(plot_lr_and_bumps, history, title=title))
        )
    return jobs


def _split_jobs(run: _Run, split: str, outputs: dict[str, np.ndarray]) -> list[FigureJob]:
    labels, predictions = outputs["labels"], outputs["predictions"]
    _, times = label_outputs(outputs)
    n_classes = times.shape[1]
    names = run.names(n_classes)
    title = f"{run.heading}, {SPLIT_NAMES[split]}"
    matrix = confusion_matrix(labels, predictions, n_classes)
    t_correct = None
    if config_value(run.config, "learning.loss.type") == "mse":
        t_correct = config_value(run.config, "learning.loss.t_correct")

    def output_times() -> Figure:
        mean, std = sorted_output_stats(times, labels)
        return plot_output_times(
            mean, std, names, t_correct=t_correct, title=title, ylabel=run.output_label
        )

    jobs = [
        FigureJob(
            f"confusion_{split}",
            lambda: plot_confusion(matrix, names, title=title, undecided=run.undecided_label),
        ),
        FigureJob(f"{run.output_name}_{split}", output_times),
    ]
    if run.time_stepped:
        jobs += _activity_jobs(run, split, outputs, title)
    else:
        jobs.append(
            FigureJob(
                f"spike_time_histograms_{split}",
                lambda: plot_spike_time_histograms(
                    times, labels, hidden_layers(outputs), title=title
                ),
            )
        )
    samples = outputs.get("samples")
    if run.dataset == "yin_yang":
        if samples is None:
            logger.info("no samples in the %s outputs: skipping the Yin-Yang maps", split)
            return jobs
        if run.time_stepped:
            return jobs + _yin_yang_jobs(split, outputs, names, title)[:1]
        return jobs + _yin_yang_jobs(split, outputs, names, title)
    jobs.append(
        FigureJob(
            f"per_class_accuracy_{split}",
            lambda: plot_per_class_accuracy(matrix, names, title=title),
        )
    )
    if "example_images" in outputs:
        index = outputs["example_index"]
        samples, times, labels = outputs["example_images"], times[index], labels[index]
    if samples is None or samples.ndim != 2 or image_side(samples.shape[1]) is None:
        logger.info("the %s outputs store no images: skipping examples_%s", split, split)
    else:
        jobs.append(
            FigureJob(
                f"examples_{split}",
                lambda: plot_examples(
                    samples, times, labels, names, title=title, xlabel=run.output_label
                ),
            )
        )
    return jobs


def _yin_yang_jobs(
    split: str, outputs: dict[str, np.ndarray], names: list[str], title: str
) -> list[FigureJob]:
    samples, labels = outputs["samples"], outputs["labels"]
    _, times = label_outputs(outputs)
    jobs = [
        FigureJob(
            f"yin_yang_map_{split}",
            lambda: plot_yin_yang_map(samples, labels, outputs["predictions"], names, title=title),
        ),
        FigureJob(
            f"yin_yang_label_times_{split}",
            lambda: plot_label_time_maps(samples, times, names, title=title),
        ),
        FigureJob(
            f"yin_yang_time_difference_{split}",
            lambda: plot_time_difference_map(samples, times, labels, title=title),
        ),
    ]
    hidden = hidden_layers(outputs)
    if not hidden:
        logger.info("no hidden times in the %s outputs: skipping the hidden-time map", split)
        return jobs
    neurons = pick_hidden_neurons(hidden[0], HIDDEN_MAP_NEURONS)
    if len(neurons) == 0:
        logger.info("no hidden neuron spikes in the %s outputs: skipping its map", split)
        return jobs
    jobs.append(
        FigureJob(
            f"yin_yang_hidden_times_{split}",
            lambda: plot_hidden_time_maps(
                samples, hidden[0], neurons, title=f"{title}, first hidden layer"
            ),
        )
    )
    return jobs


def _activity_jobs(
    run: _Run, split: str, outputs: dict[str, np.ndarray], title: str
) -> list[FigureJob]:
    """Firing rates of the split; raster and membrane traces where the savepoint traced a
    sample (the test split)."""
    dt = float(config_value(run.config, "model.dt", 1.0))
    steps = max(1, round(float(config_value(run.config, "model.sim_time", 1.0)) / dt))
    jobs = []
    counts = hidden_counts_or_means(outputs)
    if counts:
        jobs.append(
            FigureJob(
                f"firing_rates_{split}", lambda: plot_firing_rates(counts, steps, title=title)
            )
        )
    layers = trace_layers(outputs)
    if layers:
        label = run.names(label_outputs(outputs)[1].shape[1])[int(outputs["trace_labels"][0])]
        threshold = float(config_value(run.config, "model.neuron.threshold", 1.0))
        jobs += [
            FigureJob(
                "spike_raster",
                lambda: plot_spike_raster(layers, dt, label=label, title=run.heading),
            ),
            FigureJob(
                "membrane_traces",
                lambda: plot_membrane_traces(outputs, dt, threshold, title=run.heading),
            ),
        ]
    return jobs


def _weight_jobs(run: _Run) -> list[FigureJob]:
    if not (run.epoch_dir / CHECKPOINT_FILE).is_file():
        logger.info("no %s in %s: skipping the weight figures", CHECKPOINT_FILE, run.epoch_dir)
        return []

    @functools.cache
    def checkpoint() -> dict:
        from snnexp.run.results import load_checkpoint

        return load_checkpoint(run.epoch_dir)

    def layers() -> list:
        return layer_weights(checkpoint()["model"])

    jobs = [
        FigureJob("weight_histograms", lambda: plot_weight_histograms(layers(), title=run.heading)),
        FigureJob("weight_matrices", lambda: plot_weight_matrices(layers(), title=run.heading)),
    ]
    if config_value(run.config, "learning.rewiring.connectivity") is None:
        return jobs

    def sign_maps() -> Figure:
        state = checkpoint()["rewiring"]
        maps = [
            sign_map(np.asarray(s), np.asarray(a))
            for s, a in zip(state["signs"], state["active"], strict=True)
        ]
        names = matrix_names(checkpoint()["model"])
        return plot_sign_maps(maps, names, title=run.heading)

    jobs.append(FigureJob("sign_maps", sign_maps))
    if "connections" in run.history:
        jobs.append(
            FigureJob("connectivity", lambda: plot_connectivity(run.history, title=run.heading))
        )
    return jobs


def _panels(epoch: int, outputs: dict[str, np.ndarray]) -> SavepointPanels:
    labels = outputs["labels"]
    _, times = label_outputs(outputs)
    mean, std = sorted_output_stats(times, labels)
    return SavepointPanels(
        epoch, confusion_matrix(labels, outputs["predictions"], times.shape[1]), mean, std
    )


def _savepoint_jobs(run: _Run) -> list[FigureJob]:
    """Figures of the main split that combine panels or savepoints."""
    split = run.main_split
    if split is None:
        return []
    outputs = run.outputs[split]
    names = run.names(label_outputs(outputs)[1].shape[1])
    split_name = SPLIT_NAMES[split]

    def summary() -> Figure:
        panels = _panels(run.epoch or 0, outputs)
        accuracies = {
            s: float(np.mean(o["predictions"] == o["labels"])) for s, o in run.outputs.items()
        }
        yin_yang = None
        if run.dataset == "yin_yang" and "samples" in outputs:
            yin_yang = (outputs["samples"], outputs["labels"], outputs["predictions"])
        return plot_summary(
            run.history,
            panels.matrix,
            panels.mean,
            panels.std,
            names,
            config_caption(run.config, accuracies),
            split_name=split_name,
            yin_yang=yin_yang,
            title=run.heading,
            quantity="read-out scores" if run.time_stepped else "output spike times",
            ylabel=run.output_label,
            undecided=run.undecided_label,
        )

    jobs = [FigureJob("summary", summary)]
    savepoints = {
        epoch: folder
        for epoch, folder in savepoint_dirs(run.run_dir).items()
        if (folder / outputs_file(split)).is_file() and (run.epoch is None or epoch <= run.epoch)
    }
    if run.epoch and 0 in savepoints:
        jobs.append(
            FigureJob(
                "untrained_vs_trained",
                lambda: plot_comparison(
                    _panels(0, read_outputs(savepoints[0], split)),
                    _panels(run.epoch, outputs),
                    names,
                    title=f"{run.heading}, {split_name}",
                    ylabel=run.output_label,
                    undecided=run.undecided_label,
                ),
            )
        )
    else:
        logger.info(
            "no untrained savepoint (epoch_0) to compare with: skipping untrained_vs_trained"
        )
    if len(savepoints) >= 2:

        def over_training() -> Figure:
            stats = [_panels(e, read_outputs(f, split)) for e, f in savepoints.items()]
            return plot_output_times_over_training(
                list(savepoints),
                np.stack([s.mean for s in stats]),
                np.stack([s.std for s in stats]),
                names,
                title=f"{run.config.get('name', run.run_dir.name)}, {split_name}",
                ylabel=run.output_label,
            )

        jobs.append(FigureJob(f"{run.output_name}_over_training", over_training))
    return jobs
