"""`snnexp continue`: resume a run from its latest complete state or a savepoint, bitwise as if it
had not stopped."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click

from snnexp.cli.shared import (
    data_dir_option,
    data_parallel,
    friendly_errors,
    logger,
    main,
    parse_epochs,
    report_savepoint,
    run_outcome,
    setup_logging,
    tensorboard_option,
    threads_option,
    with_overrides,
)
from snnexp.run.distributed import World, broadcast_object
from snnexp.run.files import HISTORY_FILE, RESUME_FILE, SAVEPOINT_NAME, savepoint_folder
from snnexp.run.lock import run_lock
from snnexp.run.results import (
    check_run_folder,
    latest_state,
    list_savepoints,
    load_checkpoint,
    remove_staging,
    resolve_savepoint,
    set_aside,
)

LATEST = "latest"


@main.command(name="continue")
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.argument("epoch", required=False, default=LATEST)
@click.argument("savepoints", nargs=-1)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@data_dir_option
@threads_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@tensorboard_option
@friendly_errors
def continue_command(
    results_dir: Path,
    epoch: str,
    savepoints: tuple[str, ...],
    device: str | None,
    data_dir: Path | None,
    quiet: bool,
    tensorboard: bool,
) -> None:
    """Resume training from the latest complete state or from savepoint EPOCH, and train on to
    SAVEPOINTS.

    \b
    Examples:
      snnexp continue experiment_results/yin_yang_2026-11-24_10-31-07
    resumes a stopped or killed run from its latest complete state (the resume state that a
    stop signal or training.checkpoint_minutes wrote, or the latest savepoint) and trains on
    to training.epochs, saving at the configured savepoints still ahead;
      snnexp continue experiment_results/yin_yang_2026-11-24_10-31-07 300 "400, 500"
    trains epochs 301..500 from savepoint epoch_300 into the same folder, saving at 400 and
    500. EPOCH 'latest' is the latest complete state.
    """
    from snnexp.run.inference import read_run_config

    from_latest = epoch == LATEST and not SAVEPOINT_NAME.match(Path(results_dir).name)
    epoch_dir = None
    if from_latest:
        check_run_folder(results_dir)
        run_dir = Path(results_dir)
    else:
        run_dir, epoch_dir = resolve_savepoint(results_dir, _epoch_number(epoch))
    with data_parallel(device or read_run_config(run_dir).training.device) as world:
        if world.is_main:
            _continue_main(
                run_dir, epoch_dir, savepoints, device, data_dir, quiet, tensorboard, world
            )
        else:
            _continue_other_rank(run_dir, device, data_dir, tensorboard, world)


def _continue_main(
    run_dir: Path,
    epoch_dir: Path | None,
    savepoints: tuple[str, ...],
    device: str | None,
    data_dir: Path | None,
    quiet: bool,
    tensorboard: bool,
    world: World,
) -> None:
    """Rank 0 (or the only process): reads the state, hands it to the other ranks, trains and
    writes the folder."""
    from snnexp.run.inference import read_run_config
    from snnexp.run.trainer import Trainer, savepoint_epochs

    setup_logging(run_dir)
    with run_lock(run_dir):
        for name in remove_staging(run_dir):
            logger.info("removed %s, left half-written by an interrupted run", name)
        if epoch_dir is None:
            source, checkpoint = latest_state(run_dir)
        else:
            source, checkpoint = f"savepoint {epoch_dir.name}", load_checkpoint(epoch_dir)
        start = int(checkpoint["epoch"])
        cfg = with_overrides(read_run_config(run_dir), device, None, tensorboard)
        targets = parse_epochs(savepoints) if savepoints else savepoint_epochs(cfg.training)
        targets = [target for target in targets if target > start]
        broadcast_object((checkpoint, targets) if targets else None, world)
        if not targets and not savepoints:
            logger.info(
                "%s is complete: trained to training.epochs = %d (%s); nothing to do. To train "
                'further, give the epochs: snnexp continue %s %d "%d"',
                run_dir.name,
                start,
                source,
                run_dir,
                start,
                start + 100,
            )
            return
        if not targets:
            raise click.UsageError(
                f"{run_dir.name} is trained to epoch {start} ({source}); SAVEPOINTS must lie "
                f'after it, e.g.: snnexp continue {run_dir} {start} "{start + 100}"'
            )
        trainer = Trainer(cfg, run_dir=run_dir, progress=not quiet, data_dir=data_dir, world=world)
        trainer.load_state_dict(checkpoint)
        _back_up_history(run_dir, start)
        if epoch_dir is not None:
            _set_aside_later_states(run_dir, start)
        with run_outcome():
            logger.info(
                "continuing %s from %s to epoch %d (savepoints %s)",
                run_dir.name,
                source,
                max(targets),
                targets,
            )
            if world.active:
                logger.info("%s; each rank trains on its shard of every batch", world.describe())
            trainer.run(max(targets), targets)
            report_savepoint(run_dir / savepoint_folder(trainer.epoch))
            logger.info("results: %s", run_dir)


def _continue_other_rank(
    run_dir: Path, device: str | None, data_dir: Path | None, tensorboard: bool, world: World
) -> None:
    """Ranks 1 .. N-1 under torchrun: train on from the state rank 0 read (writing nothing)."""
    from snnexp.run.inference import read_run_config
    from snnexp.run.trainer import Trainer

    shared = broadcast_object(None, world)
    if shared is None:
        return
    checkpoint, targets = shared
    cfg = with_overrides(read_run_config(run_dir), device, None, tensorboard)
    trainer = Trainer(cfg, progress=False, data_dir=data_dir, world=world)
    trainer.load_state_dict(checkpoint)
    trainer.run(max(targets), targets)


def _epoch_number(epoch: str) -> int | None:
    """EPOCH as a number (None: 'latest')."""
    if epoch == LATEST:
        return None
    try:
        return int(epoch)
    except ValueError:
        raise click.BadParameter(
            f"EPOCH must be a savepoint's epoch number or '{LATEST}', got {epoch!r}",
            param_hint="EPOCH",
        ) from None


def _set_aside_later_states(run_dir: Path, epoch: int) -> None:
    """Going back to savepoint ``epoch``: the savepoints after it and the resume state belong to
    the continuation that is abandoned; they are renamed ``<name>.replaced-<time>`` (kept, and
    never again taken for the latest state)."""
    later = [folder for number, folder in list_savepoints(run_dir).items() if number > epoch]
    resume = run_dir / RESUME_FILE
    for path in [*later, *([resume] if resume.is_file() else [])]:
        kept = set_aside(path)
        logger.warning("going back to epoch %d: %s is kept as %s", epoch, path.name, kept.name)


def _back_up_history(run_dir: Path, epoch: int) -> None:
    """Keep a copy of history.csv when it holds epochs after ``epoch`` or is damaged (it is
    rewritten from the checkpoint's history)."""
    history = run_dir / HISTORY_FILE
    if not history.is_file():
        return
    content = history.read_bytes()
    if content.count(b"\n") > epoch + 2 or not content.startswith(b"epoch,"):
        backup = run_dir / f"history.before-continue-{time.strftime('%Y-%m-%d_%H-%M-%S')}.csv"
        shutil.copy2(history, backup)
