"""`snnexp data prepare`: fetch, verify and preprocess a dataset for offline runs."""

from __future__ import annotations

from pathlib import Path

import click

from snnexp.cli.shared import friendly_errors, logger, main, setup_logging
from snnexp.config import DATASET_SHAPES


@main.group()
def data() -> None:
    """Dataset files: fetch, verify and preprocess them ahead of training."""


@data.command()
@click.argument("dataset", type=click.Choice(list(DATASET_SHAPES)))
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Data root (default: $SNNEXP_DATA, then ./data); files go to <DIR>/MNIST/raw/.",
)
@click.option(
    "--download/--no-download",
    default=True,
    show_default=True,
    help="Fetch missing files from torchvision's mirrors.",
)
@friendly_errors
def prepare(dataset: str, data_dir: Path | None, download: bool) -> None:
    """Fetch (if missing), verify and preprocess DATASET, so that training needs no network.

    \b
    Example (once on a cluster's login node, then train offline on the compute nodes):
      snnexp data prepare 16x16_mnist --data-dir /scratch/$USER/data
      snnexp train experiment_configs/16x16_mnist.yaml --data-dir /scratch/$USER/data
    """
    from snnexp.data import data_root
    from snnexp.data.mnist import prepare as prepare_files

    setup_logging()
    if dataset == "yin_yang":
        logger.info("yin_yang is generated from fixed seeds: nothing to download or cache")
        return
    prepared = prepare_files(dataset, data_root(data_dir), download)
    root = prepared.root.absolute()
    logger.info("%s for %s, verified (MD5 of the uncompressed files):", prepared.title, dataset)
    for path in prepared.files:
        logger.info("  %s", path.absolute())
    for path in prepared.caches:
        logger.info("preprocessed cache: %s", path.absolute())
    sizes = ", ".join(f"{split} {size}" for split, size in prepared.split_sizes.items())
    logger.info("splits: %s", sizes)
    logger.info("train offline with --data-dir %s (or SNNEXP_DATA=%s)", root, root)
