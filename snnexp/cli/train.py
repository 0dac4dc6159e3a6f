"""`snnexp train`: a new run from a config."""

from __future__ import annotations

import time
from pathlib import Path

import click

from snnexp.cli.shared import (
    data_dir_option,
    data_parallel,
    device_text,
    friendly_errors,
    logger,
    main,
    new_run_folder,
    report_savepoint,
    results_dir_option,
    setup_logging,
    tensorboard_option,
    threads_option,
    training_device_option,
    with_overrides,
)
from snnexp.config import load_config
from snnexp.run.files import savepoint_folder


@main.command()
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False))
@results_dir_option
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write the run into exactly this folder (created; it must not exist yet) instead of "
    "a new timestamped one under --results-dir.",
)
@training_device_option
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    default=None,
    help="Override training.seeds (torch and numpy), 0 .. 2**32 - 1.",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one key of CONFIG, e.g. --set 'model.layer_sizes=[300, 3]' (the value is "
    "YAML; repeatable). The run's config.yaml records the result.",
)
@data_dir_option
@threads_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@tensorboard_option
@friendly_errors
def train(
    config: Path,
    results_dir: Path,
    run_dir: Path | None,
    device: str | None,
    seed: int | None,
    settings: tuple[str, ...],
    data_dir: Path | None,
    quiet: bool,
    tensorboard: bool,
) -> None:
    """Train the network described by CONFIG (a YAML file).

    \b
    Example:
      snnexp train experiment_configs/yin_yang.yaml --seed 1
    writes experiment_results/yin_yang_<date>_<time>/ with config.yaml, history.csv,
    log.txt and one epoch_<N>/ folder per savepoint (epoch_0 = untrained).
    """
    from snnexp.run.trainer import Trainer, savepoint_epochs

    setup_logging()
    cfg = with_overrides(load_config(config, settings), device, seed, tensorboard)
    with data_parallel(cfg.training.device) as world:
        options = {"progress": not quiet and world.is_main, "data_dir": data_dir, "world": world}
        if cfg.model.nir and not cfg.model.blocks:
            from snnexp.nir.runs import config_with_graph, load_graph_weights, read_network_file

            graph = read_network_file(Path(cfg.model.nir))
            cfg, imported = config_with_graph(cfg, graph, None, cfg.model.nir)
            trainer = Trainer(cfg, **options)
            load_graph_weights(trainer.model, imported)
        else:
            trainer = Trainer(cfg, **options)
        if not world.is_main:
            trainer.run(cfg.training.epochs, savepoint_epochs(cfg.training))
            return
        with new_run_folder(trainer, results_dir, cfg.name or config.stem, run_dir) as run_dir:
            logger.info(
                "training %s (%s) on %s -> %s",
                cfg.name,
                cfg.learning.rule,
                device_text(trainer.device),
                run_dir,
            )
            if world.active:
                logger.info("%s; each rank trains on its shard of every batch", world.describe())
            if settings:
                logger.info("config keys set on the command line: %s", "; ".join(settings))
            started = time.perf_counter()
            trainer.run(cfg.training.epochs, savepoint_epochs(cfg.training))
            logger.info(
                "trained %d epochs in %.1f s", cfg.training.epochs, time.perf_counter() - started
            )
            report_savepoint(run_dir / savepoint_folder(trainer.epoch))
            logger.info("results: %s", run_dir)
