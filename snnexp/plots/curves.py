"""Learning curves: loss and accuracy (or error, log scale) per epoch, learning rate, bumps."""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from snnexp.plots.io import HistoryError, read_validation
from snnexp.plots.run import FigureJob, Run
from snnexp.plots.style import OKABE_ITO, PAGE_WIDTH, TRAIN_COLOR, VAL_COLOR, styled

logger = logging.getLogger(__name__)

SPLITS = (("train", "training", TRAIN_COLOR), ("val", "validation", VAL_COLOR))
MARKER_MAX_EPOCHS = 40  # beyond this, markers on every epoch only clutter the lines
LR_STEP_COLOR = "0.55"
BUMP_COLOR = OKABE_ITO[1]
PROGRESS_DPI = 100


def error_percent(accuracy: np.ndarray) -> np.ndarray:
    """Classification error in percent from accuracies given as fractions."""
    return 100.0 * (1.0 - np.asarray(accuracy, dtype=np.float64))


def lr_steps(history: dict[str, np.ndarray]) -> np.ndarray:
    """Epochs whose learning rate differs from the epoch before (empty without an lr column)."""
    if "lr" not in history or len(history["lr"]) < 2:
        return np.array([], dtype=np.int64)
    lr = history["lr"]
    changed = ~np.isclose(lr[1:], lr[:-1], rtol=1e-9, atol=0.0)
    return history["epoch"][1:][changed]


def _mark_lr_steps(ax: Axes, steps: np.ndarray) -> None:
    """Short ticks along the top of ``ax`` at the epochs where the learning rate changed."""
    if len(steps):
        ax.plot(
            steps,
            np.ones(len(steps)),
            transform=ax.get_xaxis_transform(),
            linestyle="none",
            marker="v",
            markersize=3.5,
            color=LR_STEP_COLOR,
            clip_on=False,
            label="lr step",
        )


def draw_score(
    ax: Axes, history: dict[str, np.ndarray], *, log_error: bool = False, lr_marks: bool = True
) -> None:
    """Accuracy in % (or error in % on a log axis) against epoch, training and validation."""
    epochs = history["epoch"]
    marker = "o" if len(epochs) <= MARKER_MAX_EPOCHS else None
    for split, label, color in SPLITS:
        accuracy = history[f"{split}_accuracy"]
        score = error_percent(accuracy) if log_error else 100.0 * accuracy
        ax.plot(epochs, score, color=color, marker=marker, label=label)
    if log_error:
        ax.set_yscale("log", nonpositive="mask")
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.set_ylabel("error [%]")
    else:
        ax.set_ylabel("accuracy [%]")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if lr_marks:
        _mark_lr_steps(ax, lr_steps(history))


def plot_curves(
    history: dict[str, np.ndarray],
    *,
    log_error: bool = False,
    loss_name: str | None = None,
    marked_epoch: int | None = None,
    title: str | None = None,
) -> Figure:
    """Loss (left) and accuracy in % (right) against epoch for training and validation.

    With ``log_error`` the right panel shows the error in % on a log axis instead, which is
    what separates well-trained networks (epochs at 0 % error are left out there).
    ``marked_epoch`` draws a dotted line at the savepoint being evaluated; grey triangles on
    the top edge mark the epochs where the learning rate changed.
    """
    epochs = history["epoch"]
    marker = "o" if len(epochs) <= MARKER_MAX_EPOCHS else None
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 2.6), layout="constrained")
        ax_loss, ax_acc = fig.subplots(1, 2)
        for split, label, color in SPLITS:
            ax_loss.plot(epochs, history[f"{split}_loss"], color=color, marker=marker, label=label)
        ax_loss.set_ylabel(f"loss ({loss_name.upper()})" if loss_name else "loss")
        ax_loss.set_xlabel("epoch")
        ax_loss.xaxis.set_major_locator(MaxNLocator(integer=True))
        _mark_lr_steps(ax_loss, lr_steps(history))
        draw_score(ax_acc, history, log_error=log_error)
        for ax in (ax_loss, ax_acc):
            if marked_epoch is not None:
                ax.axvline(
                    marked_epoch,
                    color="0.4",
                    linestyle=":",
                    linewidth=1.0,
                    label=f"savepoint (epoch {marked_epoch})",
                )
        ax_loss.legend(loc="best")
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def plot_lr_and_bumps(history: dict[str, np.ndarray], *, title: str | None = None) -> Figure:
    """Learning rate (top, log axis) and weight-bumping events per epoch (bottom)."""
    epochs = history["epoch"]
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH / 2, 3.2), layout="constrained")
        ax_lr, ax_bumps = fig.subplots(2, 1, sharex=True)
        ax_lr.step(epochs, history["lr"], where="post", color=TRAIN_COLOR)
        ax_lr.set_yscale("log")
        ax_lr.set_ylabel("learning rate")
        bumps = np.nan_to_num(history["bumps"]) if "bumps" in history else np.zeros(len(epochs))
        ax_bumps.bar(epochs, bumps, width=1.0, color=BUMP_COLOR, linewidth=0)
        ax_bumps.set_ylabel("weight bumps\nper epoch")
        ax_bumps.set_xlabel("epoch")
        ax_bumps.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_bumps.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_bumps.set_ylim(bottom=0)
        ax_bumps.set_title(f"{int(bumps.sum())} bumps in all", fontsize="small")
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def progress_png(rows: Sequence[Mapping[str, float]], title: str | None = None) -> bytes:
    """PNG bytes of the training curves of the history rows written so far (the live progress
    plot of a running training)."""
    history = {key: np.array([row[key] for row in rows], dtype=np.float64) for key in rows[0]}
    history["epoch"] = history["epoch"].astype(np.int64)
    fig = plot_curves(history, title=title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PROGRESS_DPI, facecolor="white")
    return buffer.getvalue()


def plot_validation_by_iteration(
    validation: dict[str, np.ndarray], *, title: str | None = None
) -> Figure:
    """Validation loss (left) and accuracy in % (right) against training iteration (batch),
    from the validations every N batches (training.validate_every)."""
    iterations = validation["iteration"]
    marker = "o" if len(iterations) <= MARKER_MAX_EPOCHS else None
    with styled():
        fig = Figure(figsize=(PAGE_WIDTH, 2.6), layout="constrained")
        ax_loss, ax_acc = fig.subplots(1, 2)
        ax_loss.plot(iterations, validation["val_loss"], color=VAL_COLOR, marker=marker)
        ax_loss.set_ylabel("validation loss")
        ax_acc.plot(iterations, 100.0 * validation["val_accuracy"], color=VAL_COLOR, marker=marker)
        ax_acc.set_ylabel("validation accuracy [%]")
        for ax in (ax_loss, ax_acc):
            ax.set_xlabel("iteration")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """``training_curves``, ``training_curves_log_error``, where the history has the learning
    rate ``lr_and_bumps``, and where the run validated every N batches
    ``validation_by_iteration``."""
    history = run.history
    if len(history["epoch"]) == 0:
        logger.info("history.csv has no epochs yet: skipping the training curves")
        return []
    loss_name = run.value("learning.loss.type")
    title = str(run.value("name", "")) or None
    found = [
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
        found.append(
            FigureJob("lr_and_bumps", functools.partial(plot_lr_and_bumps, history, title=title))
        )
    try:
        validation = read_validation(run.run_dir)
    except HistoryError as error:
        logger.warning("%s: skipping the validation_by_iteration figure", error)
        validation = None
    if validation is not None and len(validation["iteration"]):
        plot = functools.partial(plot_validation_by_iteration, validation, title=title)
        found.append(FigureJob("validation_by_iteration", plot))
    return found
