"""The shared look of all snnexp figures: style sheet, palette, labels, saving.

Figures are built on :class:`matplotlib.figure.Figure` directly, never through pyplot, so
drawing is headless (no display, no GUI backend, no global pyplot state in a notebook) and
figures are freed as soon as they are saved.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

STYLE_FILE = Path(__file__).with_name("snnexp.mplstyle")
DPI = 200
FORMATS = ("png", "pdf", "svg")
# Paper widths in inches: one column, two columns (full page width).
COLUMN_WIDTH = 3.4
PAGE_WIDTH = 7.0

# Okabe-Ito, ordered so that yellow (weak on white) and black (error marks) come last.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
TRAIN_COLOR = OKABE_ITO[0]
VAL_COLOR = OKABE_ITO[3]
NO_SPIKE_COLOR = "#999999"
CORRECT_COLOR = OKABE_ITO[2]
WRONG_COLOR = OKABE_ITO[3]
TIME_CMAP = "viridis"
DIVERGING_CMAP = "RdBu_r"

TIME_UNIT = r"$\tau_\mathrm{s}$"
TIME_LABEL = rf"$t$ [{TIME_UNIT}]"
YIN_YANG_CLASSES = ("yang", "yin", "dot")


@contextlib.contextmanager
def styled() -> Iterator[None]:
    """Apply the snnexp style sheet while a figure is built."""
    with matplotlib.style.context(STYLE_FILE):
        yield


def class_colors(n_classes: int) -> list:
    """One colour per class: Okabe-Ito up to 8 classes, tab10 up to 10, viridis beyond."""
    if n_classes <= len(OKABE_ITO):
        return list(OKABE_ITO[:n_classes])
    if n_classes <= 10:
        return list(matplotlib.colormaps["tab10"].colors[:n_classes])
    return list(matplotlib.colormaps["viridis"](np.linspace(0.0, 0.95, n_classes)))


def class_names(dataset: str, n_classes: int) -> list[str]:
    """Readable class names: yang/yin/dot for Yin-Yang, the class index otherwise."""
    if dataset == "yin_yang" and n_classes == len(YIN_YANG_CLASSES):
        return list(YIN_YANG_CLASSES)
    return [str(c) for c in range(n_classes)]


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` in the format of the path's suffix (PNG at the snnexp resolution)."""
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path
