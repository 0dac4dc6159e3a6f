"""The `snnexp` command: parse, call, print. No science here."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
from tqdm.auto import tqdm

from snnexp import __version__
from snnexp.choices import SPLITS
from snnexp.config import (
    DATASET_SHAPES,
    ConfigError,
    ExperimentConfig,
    dump_config_yaml,
    load_config,
    steps_of,
)
from snnexp.errors import SnnexpError
from snnexp.run.files import CONFIG_FILE, FIGURES_FOLDER, HISTORY_FILE, LOG_FILE, savepoint_folder
from snnexp.run.results import (
    atomic_write_text,
    export_run,
    load_checkpoint,
    load_outputs,
    make_run_dir,
    resolve_savepoint,
)

logger = logging.getLogger("snnexp")


def _friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn snnexp's own errors into a clean message and exit code 1 (no traceback)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ConfigError, SnnexpError) as error:
            raise click.ClickException(str(error)) from error
        except KeyboardInterrupt:
            click.echo("\ninterrupted; savepoints written so far are complete", err=True)
            sys.exit(130)

    return wrapper


class _ConsoleHandler(logging.Handler):
    """Plain lines on stdout that do not break a running tqdm progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stdout)


def _setup_logging(run_dir: Path | None = None) -> None:
    """Console: INFO and above as plain lines; run_dir/log.txt: everything, timestamped."""
    logger.setLevel(logging.DEBUG)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = _ConsoleHandler()
    console.setLevel(logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(console)
    if run_dir is not None:
        file_handler = logging.FileHandler(run_dir / LOG_FILE, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(file_handler)


def _parse_epochs(values: tuple[str, ...]) -> list[int]:
    """'400, 500' / '400,500' / 400 500 -> [400, 500]."""
    tokens = [t for t in re.split(r"[,\s]+", " ".join(values)) if t]
    try:
        return sorted({int(t) for t in tokens})
    except ValueError as error:
        raise click.BadParameter(
            f'savepoints must be whole epoch numbers like "400, 500", got {" ".join(values)!r}'
        ) from error


def _with_overrides(
    cfg: ExperimentConfig, device: str | None, seed: int | None
) -> ExperimentConfig:
    training = cfg.training
    if device is not None:
        training = dataclasses.replace(training, device=device)
    if seed is not None:
        training = dataclasses.replace(
            training, seeds=dataclasses.replace(training.seeds, torch=seed, numpy=seed)
        )
    return dataclasses.replace(cfg, training=training)


def _report_savepoint(epoch_dir: Path) -> None:
    for split in ("val", "test"):
        outputs = load_outputs(epoch_dir, split)
        if outputs is not None:
            logger.info(
                "%s accuracy %.2f %% (loss %.4f) at %s",
                split,
                100 * float(outputs["accuracy"]),
                float(outputs["loss"]),
                epoch_dir.name,
            )


_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Data root of the MNIST family, files in <DIR>/MNIST/raw/ (default: dataset.root, "
    "then $SNNEXP_DATA, then ./data).",
)


def _set_threads(_ctx: click.Context, _param: click.Parameter, threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


_threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    expose_value=False,
    callback=_set_threads,
    help="CPU threads for torch (default: torch's choice, one per core). Runs side by side "
    "are faster with --threads 1 each. Results depend on the count only in the last bits.",
)


def _device_text(device: Any) -> str:
    """'cpu (N threads)', or the device and its name: 'cuda (NVIDIA H100 80GB HBM3)'."""
    import torch

    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads > 1 else ''})"
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snnexp")
def main() -> None:
    """Config-driven experiments with spiking neural networks.

    \b
    snnexp train experiment_configs/yin_yang.yaml
    snnexp inference experiment_results/yin_yang_2026-11-24_10-31-07
    snnexp eval experiment_results/yin_yang_2026-11-24_10-31-07
    snnexp continue experiment_results/yin_yang_2026-11-24_10-31-07 300 "400, 500"
    snnexp data prepare 16x16_mnist --data-dir ~/data
    """


@main.command()
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--results-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("experiment_results"),
    show_default=True,
    help="Where the timestamped result folder is created.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=None,
    help="Override training.device (auto = CUDA when available).",
)
@click.option("--seed", type=int, default=None, help="Override training.seeds (torch and numpy).")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one key of CONFIG, e.g. --set 'model.layer_sizes=[300, 3]' (the value is "
    "YAML; repeatable). The run's config.yaml records the result.",
)
@_data_dir_option
@_threads_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_friendly_errors
def train(
    config: Path,
    results_dir: Path,
    device: str | None,
    seed: int | None,
    settings: tuple[str, ...],
    data_dir: Path | None,
    quiet: bool,
) -> None:
    """Train the network described by CONFIG (a YAML file).

    \b
    Example:
      snnexp train experiment_configs/yin_yang.yaml --seed 1
    writes experiment_results/yin_yang_<date>_<time>/ with config.yaml, history.csv,
    log.txt and one epoch_<N>/ folder per savepoint (epoch_0 = untrained).
    """
    from snnexp.run.trainer import Trainer

    _setup_logging()
    cfg = _with_overrides(load_config(config, settings), device, seed)
    trainer = Trainer(cfg, progress=not quiet, data_dir=data_dir)
    run_dir = make_run_dir(results_dir, cfg.name or config.stem)
    trainer.run_dir = run_dir
    atomic_write_text(
        run_dir / CONFIG_FILE, dump_config_yaml(cfg, extra={"snnexp_version": __version__})
    )
    _setup_logging(run_dir)
    logger.info(
        "training %s (%s) on %s -> %s",
        cfg.name,
        cfg.learning.rule,
        _device_text(trainer.device),
        run_dir,
    )
    if settings:
        logger.info("config keys set on the command line: %s", "; ".join(settings))
    started = time.perf_counter()
    trainer.run(cfg.training.epochs, trainer.savepoint_epochs())
    logger.info("trained %d epochs in %.1f s", cfg.training.epochs, time.perf_counter() - started)
    _report_savepoint(run_dir / savepoint_folder(trainer.epoch))
    logger.info("results: %s", run_dir)


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
@_data_dir_option
@_threads_option
@_friendly_errors
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

    _setup_logging()
    saved = load_saved_network(results_dir, epoch, device)
    model_cfg = saved.cfg.model
    time_stepped = rule_of(saved.cfg).time_stepped
    if time_stepped and simulator == "stepped":
        raise click.BadParameter(
            f"the network of this run is time-stepped already (learning.rule "
            f"{saved.cfg.learning.rule}); --simulator chooses how first-spike networks are "
            "evaluated",
            param_hint="--simulator",
        )
    simulator = "exact" if time_stepped else simulator or model_cfg.simulator
    dt = dt or model_cfg.dt
    sim_time = sim_time or model_cfg.sim_time
    if simulator == "stepped" and dt >= sim_time:
        raise click.BadParameter(
            f"must be shorter than the simulated time {sim_time}", param_hint="--dt"
        )
    runs = [("exact", f"time-stepped, {steps_of(sim_time, dt)} steps" if time_stepped else "exact")]
    if simulator == "stepped":
        runs.append(("stepped", f"stepped dt={dt:g} sim_time={sim_time:g}"))
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
@_friendly_errors
def eval_command(
    results_dir: Path,
    epoch: int | None,
    all_epochs: bool,
    out: Path | None,
    fmt: str,
    only: tuple[str, ...],
) -> None:
    """Draw the paper-style figures of a savepoint from saved data (never retrains).

    \b
    Examples:
      snnexp eval experiment_results/yin_yang_2026-11-24_10-31-07 --epoch 300
      snnexp eval experiment_results/yin_yang_2026-11-24_10-31-07 --format pdf --only summary
      snnexp eval experiment_results/yin_yang_2026-11-24_10-31-07 --all-epochs --out figs
    """
    from snnexp.plots import check_figure_names, figure_names, render_figures
    from snnexp.run.results import list_savepoints

    _setup_logging()
    if all_epochs and epoch is not None:
        raise click.UsageError("give either --epoch or --all-epochs")
    run_dir, epoch_dir = resolve_savepoint(results_dir, epoch)
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


def _is_writable(folder: Path) -> bool:
    """Whether files can be written into ``folder`` (created if needed)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


@main.command(name="continue")
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.argument("epoch", type=int)
@click.argument("savepoints", nargs=-1)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@_data_dir_option
@_threads_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_friendly_errors
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
    cfg = _with_overrides(read_run_config(run_dir), device, None)
    targets = _parse_epochs(savepoints) if savepoints else [cfg.training.epochs]
    if max(targets) <= epoch:
        raise click.BadParameter(
            f"savepoints must lie after epoch {epoch}; got {', '.join(map(str, targets))}",
            param_hint="SAVEPOINTS",
        )
    targets = [t for t in targets if t > epoch]
    _setup_logging(run_dir)
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
    _report_savepoint(run_dir / savepoint_folder(trainer.epoch))
    logger.info("results: %s", run_dir)


@main.command(name="export")
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.argument("destination", type=click.Path(path_type=Path))
@click.option("--epoch", type=int, default=None, help="Savepoint epoch (default: the latest).")
@click.option(
    "--splits",
    default="train,val,test",
    show_default=True,
    help="Comma-separated splits whose saved outputs are kept.",
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
@_friendly_errors
def export_command(
    results_dir: Path,
    destination: Path,
    epoch: int | None,
    splits: str,
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
    _setup_logging()
    chosen = [split.strip() for split in splits.split(",") if split.strip()]
    unknown = sorted(set(chosen) - set(SPLITS))
    if unknown:
        raise click.BadParameter(
            f"unknown split(s) {', '.join(unknown)}; use train, val, test", param_hint="--splits"
        )
    run_dir, epoch_dir = resolve_savepoint(results_dir, epoch)
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
@_friendly_errors
def prepare(dataset: str, data_dir: Path | None, download: bool) -> None:
    """Fetch (if missing), verify and preprocess DATASET, so that training needs no network.

    \b
    Example (once on a cluster's login node, then train offline on the compute nodes):
      snnexp data prepare 16x16_mnist --data-dir /scratch/$USER/data
      snnexp train experiment_configs/16x16_mnist.yaml --data-dir /scratch/$USER/data
    """
    from snnexp.data import data_root
    from snnexp.data.mnist import prepare as prepare_files

    _setup_logging()
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
