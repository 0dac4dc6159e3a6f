"""`snnexp inference`: loss and accuracy of a saved network."""

from __future__ import annotations

from pathlib import Path

import click

from snnexp.cli.shared import (
    data_dir_option,
    friendly_errors,
    logger,
    main,
    setup_logging,
    threads_option,
)
from snnexp.config import steps_of
from snnexp.conversion.summary import read_conversion


@main.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--epoch", type=int, default=None, help="Savepoint epoch (default: the latest).")
@click.option(
    "--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option(
    "--simulator",
    type=click.Choice(["exact", "stepped"]),
    default=None,
    help="stepped: also evaluate with the time-stepped simulator (default: model.simulator).",
)
@click.option(
    "--dt",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Step of the stepped simulator (default: model.dt).",
)
@click.option(
    "--sim-time",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Time window of the stepped simulator (default: model.sim_time).",
)
@data_dir_option
@threads_option
@friendly_errors
def inference(
    results_dir: Path,
    epoch: int | None,
    split: str,
    device: str,
    simulator: str | None,
    dt: float | None,
    sim_time: float | None,
    data_dir: Path | None,
) -> None:
    """Loss and accuracy of a saved network on a data split.

    With the stepped simulator (--simulator stepped, or model.simulator: stepped in the run's
    config) both accuracies are printed: exact and time-stepped.

    \b
    Examples:
      snnexp inference experiment_results/yin_yang_2026-11-24_10-31-07
      snnexp inference experiment_results/yin_yang_2026-11-24_10-31-07 --epoch 100 --split val
      snnexp inference experiment_results/yin_yang_2026-11-24_10-31-07/epoch_300
      snnexp inference experiment_results/yin_yang_2026-11-24_10-31-07 --simulator stepped --dt 0.01
    """
    from snnexp.run.build import rule_of
    from snnexp.run.inference import evaluate_saved, load_saved_network

    setup_logging()
    saved = load_saved_network(results_dir, epoch, device)
    model_cfg = saved.cfg.model
    rule = rule_of(saved.cfg)
    if rule.scores and simulator == "stepped":
        kind = "time-stepped already" if rule.time_stepped else "an ANN"
        raise click.BadParameter(
            f"the network of this run is {kind} (learning.rule {rule.name}); --simulator "
            "chooses how first-spike networks are evaluated",
            param_hint="--simulator",
        )
    simulator = "exact" if rule.scores else simulator or model_cfg.simulator
    dt = dt or model_cfg.dt
    sim_time = sim_time or model_cfg.sim_time
    if simulator == "stepped" and dt >= sim_time:
        raise click.BadParameter(
            f"must be shorter than the simulated time {sim_time}", param_hint="--dt"
        )
    label = "exact"
    if rule.time_stepped:
        label = f"time-stepped, {steps_of(sim_time, dt)} steps"
    elif rule.analog:
        label = "ANN"
    runs = [("exact", label)]
    if simulator == "stepped":
        runs.append(("stepped", f"stepped dt={dt:g} sim_time={sim_time:g}"))
    conversion = read_conversion(saved.run_dir)
    if conversion is not None:
        label = f"SNN ({conversion['code']}, {steps_of(sim_time, dt)} steps)"
        twin = "ANN it was converted from" if saved.epoch == 0 else "ReLU twin of these weights"
        runs = [("exact", label), ("analog", twin)]
    for name, label in runs:
        result = evaluate_saved(
            saved, split, simulator=name, dt=dt, sim_time=sim_time, data_dir=data_dir
        )
        logger.info(
            "%s | epoch %d | %s split (%d samples) | %s: accuracy %.2f %%, loss %.4f",
            saved.run_dir.name,
            saved.epoch,
            split,
            len(result.labels),
            label,
            100 * result.accuracy,
            result.loss,
        )
