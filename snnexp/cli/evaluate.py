"""`snnexp eval`: the figures of a savepoint."""

from __future__ import annotations

import os
from pathlib import Path

import click

from snnexp.cli.shared import data_dir_option, friendly_errors, logger, main, setup_logging
from snnexp.errors import SnnexpError
from snnexp.run.files import FIGURES_FOLDER
from snnexp.run.results import resolve_savepoint


@main.command(name="eval")
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--epoch", type=int, default=None, help="Savepoint epoch (default: the latest).")
@click.option("--all-epochs", is_flag=True, help="Draw the figures of every savepoint.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the figures (default: <savepoint>/figures; with --all-epochs OUT/epoch_<N>).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "pdf", "svg"]),
    default="png",
    show_default=True,
    help="File format of the figures.",
)
@click.option(
    "--only",
    multiple=True,
    metavar="NAME",
    help="Draw only this figure (file stem, e.g. confusion_test); repeatable.",
)
@click.option(
    "--tensorboard",
    is_flag=True,
    help="Also write the savepoint's statistics (history, weights, spikes on validation "
    "samples; ANN vs SNN for a converted run) to <run>/tensorboard/.",
)
@data_dir_option
@friendly_errors
def eval_command(
    results_dir: Path,
    epoch: int | None,
    all_epochs: bool,
    out: Path | None,
    fmt: str,
    only: tuple[str, ...],
    tensorboard: bool,
    data_dir: Path | None,
) -> None:
    """Draw the paper-style figures of a savepoint from saved data (never retrains).

    \b
    Examples:
      snnexp eval experiment_results/yin_yang_2026-11-24_10-31-07 --epoch 300
      snnexp eval experiment_results/yin_yang_2026-11-24_10-31-07 --format pdf --only summary
      snnexp eval experiment_results/yin_yang_2026-11-24_10-31-07 --all-epochs --out figs
      snnexp eval experiment_results/yin_yang_2026-11-24_10-31-07 --tensorboard
    """
    from snnexp.plots import check_figure_names, figure_names, render_figures
    from snnexp.run.results import list_savepoints

    setup_logging()
    if all_epochs and epoch is not None:
        raise click.UsageError("give either --epoch or --all-epochs")
    run_dir, epoch_dir = resolve_savepoint(results_dir, epoch)
    if tensorboard:
        from snnexp.run.tensorboard import log_savepoint, writer_class

        writer_class()
    epoch_dirs = list(list_savepoints(run_dir).values()) if all_epochs else [epoch_dir]
    selection = list(only) or None
    names = {folder: figure_names(run_dir, folder) for folder in epoch_dirs} if selection else {}
    if selection:
        check_figure_names(selection, {name for found in names.values() for name in found})
    for folder in epoch_dirs:
        if out is not None:
            out_dir = out / folder.name if all_epochs else out
        elif _is_writable(folder / FIGURES_FOLDER):
            out_dir = folder / FIGURES_FOLDER
        else:
            out_dir = Path("experiment_results") / FIGURES_FOLDER / run_dir.name / folder.name
            logger.warning(
                "%s is read-only; writing its figures to %s instead (choose with --out)",
                folder,
                out_dir,
            )
        if not _is_writable(out_dir):
            raise SnnexpError(f"cannot write figures to {out_dir}; choose a folder with --out")
        wanted = None
        if selection:
            wanted = [name for name in selection if name in names[folder]]
        for path in render_figures(run_dir, folder, out_dir, fmt=fmt, only=wanted):
            logger.info("wrote %s", path)
        if tensorboard:
            written = log_savepoint(run_dir, folder, data_dir, history=folder == epoch_dirs[-1])
            logger.info("wrote the TensorBoard statistics of %s to %s", folder.name, written)


def _is_writable(folder: Path) -> bool:
    """Whether files can be written into ``folder`` (created if needed)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)
