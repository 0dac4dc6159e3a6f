"""`snnexp export`: a trimmed copy of a savepoint (pretrained networks)."""

from __future__ import annotations

from pathlib import Path

import click

from snnexp.choices import SPLITS
from snnexp.cli.shared import friendly_errors, logger, main, parse_splits, setup_logging
from snnexp.run.files import outputs_file
from snnexp.run.results import export_run, resolve_savepoint


@main.command(name="export")
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.argument("destination", type=click.Path(path_type=Path))
@click.option("--epoch", type=int, default=None, help="Savepoint epoch (default: the latest).")
@click.option(
    "--splits",
    default=None,
    help="Comma-separated splits whose saved outputs are kept (default: every split the "
    "savepoint has).",
)
@click.option(
    "--drop-optimizer",
    is_flag=True,
    help="Leave the optimizer state out (smaller; the copy cannot be continued).",
)
@click.option(
    "--drop-hidden",
    is_flag=True,
    help="Leave the hidden layers' saved arrays out of the outputs (only figures use them).",
)
@friendly_errors
def export_command(
    results_dir: Path,
    destination: Path,
    epoch: int | None,
    splits: str | None,
    drop_optimizer: bool,
    drop_hidden: bool,
) -> None:
    """Copy a run, trimmed to one savepoint, into DESTINATION (a new folder): config,
    history, log, and the savepoint's checkpoint, outputs and figures. The copy is a normal
    result folder for inference and eval, e.g. to ship in pretrained/.

    \b
    Example:
      snnexp export experiment_results/yin_yang_2026-11-24_10-31-07 pretrained/yin_yang_et \\
        --splits test
    """
    setup_logging()
    run_dir, epoch_dir = resolve_savepoint(results_dir, epoch)
    if splits is None:
        chosen = [split for split in SPLITS if (epoch_dir / outputs_file(split)).is_file()]
    else:
        chosen = parse_splits(splits)
    copy = export_run(
        run_dir,
        epoch_dir,
        destination,
        chosen,
        keep_optimizer=not drop_optimizer,
        keep_hidden=not drop_hidden,
    )
    size = sum(path.stat().st_size for path in copy.rglob("*") if path.is_file())
    logger.info("exported %s of %s to %s (%.1f MB)", epoch_dir.name, run_dir, copy, size / 1e6)
