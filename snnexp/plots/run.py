"""What the figure families read: one savepoint of a result folder (:class:`Run`, loaded once and
shared) and the figures they plan from it (:class:`FigureJob`).

Every family module (``curves``, ``confusion``, ...) has ``jobs(run) -> list[FigureJob]``: the
figures that apply to the savepoint, each built only when drawn; :mod:`snnexp.plots` registers
the families.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from snnexp.choices import SPLITS
from snnexp.config import SCORE_RULES, TIME_STEPPED_RULES
from snnexp.plots.io import config_value, label_outputs, read_outputs, savepoint_dirs
from snnexp.plots.style import TIME_LABEL, class_names
from snnexp.run.files import CHECKPOINT_FILE, outputs_file

if TYPE_CHECKING:
    from snnexp.graph.spec import GraphSpec

logger = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "training set", "val": "validation set", "test": "test set"}
SCORE_LABEL = "read-out score"
OUTPUT_TIME_LABEL = f"output spike time {TIME_LABEL}"
NO_SPIKE_LABEL = "no spike"
"""The last column of the confusion matrices of first-spike runs: no label neuron spiked."""
TIE_LABEL = "tie"
"""The last column of time-stepped runs: no unique maximum of the read-out."""


@dataclass(frozen=True)
class FigureJob:
    """One figure to draw: its name (the file stem) and how to build it."""

    name: str
    build: Callable[[], Figure]


@dataclass
class Run:
    """What the figures of one savepoint read, loaded once."""

    run_dir: Path
    epoch_dir: Path
    config: dict[str, Any]
    history: dict[str, np.ndarray]
    epoch: int | None
    heading: str

    @functools.cached_property
    def outputs(self) -> dict[str, dict[str, np.ndarray]]:
        """The saved outputs of each split that has any."""
        found = {}
        for split in SPLITS:
            outputs = read_outputs(self.epoch_dir, split)
            if outputs is None or len(outputs["labels"]) == 0:
                logger.info("no %s outputs in %s: skipping its figures", split, self.epoch_dir)
            else:
                found[split] = outputs
        return found

    def value(self, path: str, default: Any = None) -> Any:
        """A value of the run's config by key path."""
        return config_value(self.config, path, default)

    @property
    def dataset(self) -> str:
        return str(self.value("dataset.name", ""))

    @property
    def main_split(self) -> str | None:
        """The split of the summary and comparison figures: test, else val, else train."""
        return next((s for s in reversed(SPLITS) if s in self.outputs), None)

    def names(self, n_classes: int) -> list[str]:
        """The class names of the run's dataset."""
        return class_names(self.dataset, n_classes)

    def split_title(self, split: str) -> str:
        """The heading of a split's figures."""
        return f"{self.heading}, {SPLIT_NAMES[split]}"

    @property
    def time_stepped(self) -> bool:
        """Whether the run is a time-stepped (BPTT) one: spikes in steps, scores as outputs."""
        return self.value("learning.rule") in TIME_STEPPED_RULES

    @property
    def scores(self) -> bool:
        """Whether the run's label outputs are scores (time-stepped and analog networks), not
        first spike times."""
        return self.value("learning.rule") in SCORE_RULES

    @property
    def output_name(self) -> str:
        """File-stem stem of the sorted label-output figures."""
        return "output_scores" if self.scores else "output_times"

    @property
    def output_label(self) -> str:
        return SCORE_LABEL if self.scores else OUTPUT_TIME_LABEL

    @property
    def undecided_label(self) -> str:
        """Heading of the confusion matrices' column of samples without a prediction."""
        return TIE_LABEL if self.scores else NO_SPIKE_LABEL

    @property
    def dt(self) -> float:
        """The step of a time-stepped run."""
        return float(self.value("model.dt", 1.0))

    @functools.cached_property
    def has_checkpoint(self) -> bool:
        """Whether the savepoint kept its checkpoint (weights), logging once when not."""
        if (self.epoch_dir / CHECKPOINT_FILE).is_file():
            return True
        logger.info("no %s in %s: skipping the weight figures", CHECKPOINT_FILE, self.epoch_dir)
        return False

    @functools.cached_property
    def checkpoint(self) -> dict[str, Any]:
        """The savepoint's checkpoint (loaded on first use: it needs torch)."""
        from snnexp.run.results import load_checkpoint

        return load_checkpoint(self.epoch_dir)

    @functools.cached_property
    def graph(self) -> GraphSpec:
        """The run's graph of blocks, rebuilt from its config (needs torch)."""
        from snnexp.config import config_from_dict
        from snnexp.graph.build import graph_spec

        return graph_spec(config_from_dict(self.config))

    def savepoints_with(self, split: str) -> dict[int, Path]:
        """{epoch: folder} of the run's savepoints up to this one that saved ``split``."""
        return {
            epoch: folder
            for epoch, folder in savepoint_dirs(self.run_dir).items()
            if (folder / outputs_file(split)).is_file()
            and (self.epoch is None or epoch <= self.epoch)
        }

    def traced_label(self, outputs: dict[str, np.ndarray]) -> str:
        """The class name of the first traced sample of a time-stepped savepoint."""
        n_classes = label_outputs(outputs)[1].shape[1]
        return self.names(n_classes)[int(outputs["trace_labels"][0])]
