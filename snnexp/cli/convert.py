"""`snnexp convert`: the ANN of a run as a spiking network, in a new result folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from snnexp.choices import SPLITS
from snnexp.cli.shared import (
    data_dir_option,
    device_text,
    friendly_errors,
    logger,
    main,
    new_run_folder,
    parse_splits,
    results_dir_option,
    setup_logging,
    threads_option,
    training_device_option,
    with_overrides,
)
from snnexp.conversion.codes import CODES
from snnexp.conversion.summary import comparison
from snnexp.run.files import CONVERSION_FILE
from snnexp.run.results import atomic_write_text


@main.command(name="convert")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--code", type=click.Choice(list(CODES)), required=True, help="The spike code.")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Simulated steps (default: 100 for rate, 50 for the ttfs codes); the accuracy after "
    "every step up to it is measured.",
)
@click.option(
    "--percentile",
    type=click.FloatRange(0, 100, min_open=True),
    default=99.9,
    show_default=True,
    help="Each layer's weights are normalised by this percentile of its positive ANN activations.",
)
@click.option(
    "--calibration-samples",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Training samples whose ANN activations set the normalisation.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Threshold of the spiking neurons (default: 1 for rate, 6 for the ttfs codes).",
)
@click.option("--epoch", type=int, default=None, help="Savepoint of RUN (default: the latest).")
@click.option(
    "--splits",
    default="test",
    show_default=True,
    help="Comma-separated splits simulated and saved (each sample for all the steps).",
)
@results_dir_option
@training_device_option
@data_dir_option
@threads_option
@friendly_errors
def convert_command(
    run: Path,
    code: str,
    steps: int | None,
    percentile: float,
    calibration_samples: int,
    threshold: float | None,
    epoch: int | None,
    splits: str,
    results_dir: Path,
    device: str | None,
    data_dir: Path | None,
) -> None:
    """Convert the ANN of RUN (a learning.rule: ann run, or a folder in pretrained/) into a
    spiking network: a new result folder <results-dir>/<name>_<code>_<date>_<time>/ with
    config, savepoint epoch_0 and conversion.json (ANN and SNN accuracy, the SNN's accuracy
    after every step, spikes per layer, synaptic operations against the ANN's MACs).
    `snnexp inference` and `eval` work on it; `snnexp continue` fine-tunes it with BPTT.

    \b
    Examples:
      snnexp convert pretrained/mnist_lenet5_ann --code rate --steps 200
      snnexp convert pretrained/mnist_lenet5_ann --code ttfs
    """
    from snnexp.conversion.convert import ConversionSettings, convert
    from snnexp.run.inference import read_run_config
    from snnexp.run.results import load_checkpoint, resolve_savepoint

    setup_logging()
    chosen = parse_splits(splits)
    settings = ConversionSettings(
        code=code,
        steps=steps,
        percentile=percentile,
        calibration_samples=calibration_samples,
        threshold=threshold,
        splits=tuple(split for split in SPLITS if split in chosen),
    )
    run_dir, epoch_dir = resolve_savepoint(run, epoch)
    ann_cfg = with_overrides(read_run_config(run_dir), device, None)
    checkpoint = load_checkpoint(epoch_dir)
    started = time.perf_counter()
    conversion = convert(ann_cfg, checkpoint["model"], settings, data_dir)
    trainer = conversion.trainer
    with new_run_folder(trainer, results_dir, trainer.cfg.name) as out_dir:
        logger.info(
            "converted %s (%s) to %s on %s -> %s",
            run_dir,
            epoch_dir.name,
            settings.spike_code.summary,
            device_text(trainer.device),
            out_dir,
        )
        logger.info(
            "%d steps, threshold %g, weights normalised by the %g-th percentile of %d "
            "training samples' activations",
            settings.n_steps,
            settings.theta,
            settings.percentile,
            conversion.calibration_samples,
        )
        summary = conversion.summary(settings, run_dir, int(checkpoint["epoch"]))
        trainer.history = [trainer.initial_row()]
        trainer.save()
        atomic_write_text(out_dir / CONVERSION_FILE, json.dumps(summary, indent=1) + "\n")
        for split in settings.splits:
            logger.info("%s split: %s", split, comparison(summary, split))
        logger.info("converted in %.1f s", time.perf_counter() - started)
        logger.info("results: %s", out_dir)
