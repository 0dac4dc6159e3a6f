"""`snnexp continue`: resume a run from a savepoint, bitwise as if it had not stopped."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click

from snnexp.cli.shared import (
    data_dir_option,
    friendly_errors,
    logger,
    main,
    parse_epochs,
    report_savepoint,
    setup_logging,
    threads_option,
    with_overrides,
)
from snnexp.run.files import HISTORY_FILE, savepoint_folder
from snnexp.run.results import load_checkpoint, resolve_savepoint


@main.command(name="continue")
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.argument("epoch", type=int)
@click.argument("savepoints", nargs=-1)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@data_dir_option
@threads_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly_errors
def continue_command(
    results_dir: Path,
    epoch: int,
    savepoints: tuple[str, ...],
    device: str | None,
    data_dir: Path | None,
    quiet: bool,
) -> None:
    """Resume training from savepoint EPOCH and train on to SAVEPOINTS.

    \b
    Example:
      snnexp continue experiment_results/yin_yang_2026-11-24_10-31-07 300 "400, 500"
    trains epochs 301..500 into the same folder, saving at 400 and 500. Without SAVEPOINTS
    it trains on to the config's training.epochs.
    """
    from snnexp.run.inference import read_run_config
    from snnexp.run.trainer import Trainer

    run_dir, epoch_dir = resolve_savepoint(results_dir, epoch)
    cfg = with_overrides(read_run_config(run_dir), device, None)
    targets = parse_epochs(savepoints) if savepoints else [cfg.training.epochs]
    if max(targets) <= epoch:
        raise click.BadParameter(
            f"savepoints must lie after epoch {epoch}; got {', '.join(map(str, targets))}",
            param_hint="SAVEPOINTS",
        )
    targets = [t for t in targets if t > epoch]
    setup_logging(run_dir)
    checkpoint = load_checkpoint(epoch_dir)
    trainer = Trainer(cfg, run_dir=run_dir, progress=not quiet, data_dir=data_dir)
    trainer.load_state_dict(checkpoint)
    history = run_dir / HISTORY_FILE
    if history.is_file() and len(history.read_text().splitlines()) > epoch + 2:
        backup = run_dir / f"history.before-continue-{time.strftime('%Y-%m-%d_%H-%M-%S')}.csv"
        shutil.copy2(history, backup)
    logger.info(
        "continuing %s from epoch %d to %d (savepoints %s)",
        run_dir.name,
        epoch,
        max(targets),
        targets,
    )
    trainer.run(max(targets), targets)
    report_savepoint(run_dir / savepoint_folder(trainer.epoch))
    logger.info("results: %s", run_dir)
