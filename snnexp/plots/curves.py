"""Learning curves: loss and accuracy (or error, log scale) per epoch, training and validation."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from snnexp.plots.style import TRAIN_COLOR, VAL_COLOR, styled

SPLITS = (("train", "training", TRAIN_COLOR), ("val", "validation", VAL_COLOR))
MARKER_MAX_EPOCHS = 40  # beyond this, markers on every epoch only clutter the lines


def error_percent(accuracy: np.ndarray) -> np.ndarray:
    """Classification error in percent from accuracies given as fractions."""
    return 100.0 * (1.0 - np.asarray(accuracy, dtype=np.float64))


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
    ``marked_epoch`` draws a dotted line at the savepoint being evaluated.
    """
    epochs = history["epoch"]
    marker = "o" if len(epochs) <= MARKER_MAX_EPOCHS else None
    with styled():
        fig = Figure(figsize=(9.0, 3.6), layout="constrained")
        ax_loss, ax_acc = fig.subplots(1, 2)
        for split, label, color in SPLITS:
            accuracy = history[f"{split}_accuracy"]
            score = error_percent(accuracy) if log_error else 100.0 * accuracy
            style = {"color": color, "marker": marker, "markersize": 3.5, "label": label}
            ax_loss.plot(epochs, history[f"{split}_loss"], **style)
            ax_acc.plot(epochs, score, **style)
        ax_loss.set_ylabel(f"loss ({loss_name.upper()})" if loss_name else "loss")
        if log_error:
            ax_acc.set_yscale("log", nonpositive="mask")
            ax_acc.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
            ax_acc.set_ylabel("error [%]")
        else:
            ax_acc.set_ylabel("accuracy [%]")
        for ax in (ax_loss, ax_acc):
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if marked_epoch is not None:
                ax.axvline(
                    marked_epoch,
                    color="0.4",
                    linestyle=":",
                    linewidth=1.2,
                    label=f"savepoint (epoch {marked_epoch})",
                )
        ax_loss.legend(loc="best")
        if title:
            fig.suptitle(title)
    return fig
