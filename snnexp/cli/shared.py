"""The `snnexp` command group and what its commands share: friendly errors, logging to the console
and the run's log.txt, the common options and small formatting helpers."""

from __future__ import annotations

import dataclasses
import errno
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import click
from tqdm.auto import tqdm

from snnexp import __version__
from snnexp.config import ConfigError, ExperimentConfig
from snnexp.errors import DISK_FULL, DivergenceError, SnnexpError
from snnexp.run.files import LOG_FILE
from snnexp.run.results import load_outputs
from snnexp.run.stopping import RunStopped

logger = logging.getLogger("snnexp")


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn snnexp's own errors, and what the system refuses (a full disk, a folder that cannot
    be created), into a clean message and exit code 1 (no traceback); a run stopped by a signal
    exits with 128 + the signal's number."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ConfigError, SnnexpError) as error:
            raise click.ClickException(str(error)) from error
        except RunStopped as stop:
            click.echo(str(stop), err=True)
            sys.exit(stop.exit_code)
        except KeyboardInterrupt:
            click.echo("\ninterrupted; savepoints written so far are complete", err=True)
            sys.exit(130)
        except OSError as error:
            raise click.ClickException(os_error_message(error)) from error

    return wrapper


def os_error_message(error: OSError) -> str:
    """One line for an error of the operating system, with the fix where one is known."""
    where = f" ({error.filename})" if error.filename else ""
    reason = error.strerror or str(error)
    if error.errno in DISK_FULL:
        return (
            f"no space left on the device{where}: {reason}. Free some space (or choose another "
            "--results-dir); what was written before is intact, and `snnexp continue RUN` "
            "resumes a training run from its latest complete state"
        )
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied{where}: {reason}; choose a folder you can write to"
    return f"{reason}{where}"


def log_to_file(level: int, message: str) -> None:
    """Write a line to the run's log.txt only (not the console)."""
    record = logger.makeRecord(logger.name, level, __file__, 0, message, (), None)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@contextmanager
def run_outcome() -> Iterator[None]:
    """End the run's log.txt with why the run ended: completed, stopped by a signal, diverged,
    or failed with which error (the console gets the message from :func:`friendly_errors`)."""
    try:
        yield
    except RunStopped as stop:
        log_to_file(logging.WARNING, f"run ended: {stop}")
        raise
    except DivergenceError as error:
        log_to_file(logging.ERROR, f"run ended: diverged: {error}")
        raise
    except KeyboardInterrupt:
        log_to_file(logging.WARNING, "run ended: interrupted (KeyboardInterrupt)")
        raise
    except BaseException as error:
        text = os_error_message(error) if isinstance(error, OSError) else str(error)
        log_to_file(logging.ERROR, f"run ended: failed with {type(error).__name__}: {text}")
        raise
    log_to_file(logging.INFO, "run ended: completed")


@contextmanager
def new_run_folder(
    trainer: Any, results_dir: Path, name: str, exact: Path | None = None
) -> Iterator[Path]:
    """A new result folder ``<results_dir>/<name>_<date>_<time>/`` (or ``exact``) for
    ``trainer``: created, locked against a second writer, its config.yaml written, log.txt
    opened there; inside, the run's outcome ends the log (:func:`run_outcome`)."""
    from snnexp.config import dump_config_yaml
    from snnexp.run.files import CONFIG_FILE
    from snnexp.run.lock import run_lock
    from snnexp.run.results import atomic_write_text, make_run_dir

    run_dir = make_run_dir(results_dir, name, exact)
    trainer.run_dir = run_dir
    with run_lock(run_dir):
        atomic_write_text(
            run_dir / CONFIG_FILE,
            dump_config_yaml(trainer.cfg, extra={"snnexp_version": __version__}),
        )
        setup_logging(run_dir)
        with run_outcome():
            yield run_dir


class ConsoleHandler(logging.Handler):
    """Plain lines on stdout that do not break a running tqdm progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stdout)


@contextmanager
def data_parallel(device: str) -> Iterator[Any]:
    """The :class:`~snnexp.run.distributed.World` of this process: the ranks under torchrun
    (only rank 0 prints below warnings), a single one otherwise; the process group is left at
    the end."""
    from snnexp.run.distributed import close_world, init_world

    world = init_world(device)
    if not world.is_main:
        for handler in logger.handlers:
            handler.setLevel(logging.WARNING)
    try:
        yield world
    finally:
        close_world(world)


def setup_logging(run_dir: Path | None = None) -> None:
    """Console: INFO and above as plain lines; run_dir/log.txt: everything, timestamped."""
    logger.setLevel(logging.DEBUG)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = ConsoleHandler()
    console.setLevel(logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(console)
    if run_dir is not None:
        file_handler = logging.FileHandler(run_dir / LOG_FILE, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(file_handler)


def parse_epochs(values: tuple[str, ...]) -> list[int]:
    """'400, 500' / '400,500' / 400 500 -> [400, 500]."""
    tokens = [t for t in re.split(r"[,\s]+", " ".join(values)) if t]
    try:
        return sorted({int(t) for t in tokens})
    except ValueError as error:
        raise click.BadParameter(
            f'savepoints must be whole epoch numbers like "400, 500", got {" ".join(values)!r}'
        ) from error


def parse_splits(text: str) -> list[str]:
    """'val, test' -> ['val', 'test']; an unknown or missing split is a usage error."""
    from snnexp.choices import SPLITS

    chosen = [split.strip() for split in text.split(",") if split.strip()]
    unknown = sorted(set(chosen) - set(SPLITS))
    if unknown or not chosen:
        raise click.BadParameter(
            f"unknown split(s) {', '.join(unknown) or '(none)'}; use train, val, test",
            param_hint="--splits",
        )
    return chosen


def with_overrides(
    cfg: ExperimentConfig, device: str | None, seed: int | None, tensorboard: bool = False
) -> ExperimentConfig:
    """``cfg`` with the command line's --device, --seed and --tensorboard."""
    training = cfg.training
    if tensorboard:
        training = dataclasses.replace(training, tensorboard=True)
    if device is not None:
        training = dataclasses.replace(training, device=device)
    if seed is not None:
        training = dataclasses.replace(
            training, seeds=dataclasses.replace(training.seeds, torch=seed, numpy=seed)
        )
    return dataclasses.replace(cfg, training=training)


def report_savepoint(epoch_dir: Path) -> None:
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


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Data root of the MNIST family, files in <DIR>/MNIST/raw/ (default: dataset.root, "
    "then $SNNEXP_DATA, then ./data).",
)


results_dir_option = click.option(
    "--results-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("experiment_results"),
    show_default=True,
    help="Where the timestamped result folder is created.",
)

training_device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=None,
    help="Override training.device (auto = CUDA when available).",
)

tensorboard_option = click.option(
    "--tensorboard",
    is_flag=True,
    help="Write TensorBoard statistics to <run>/tensorboard/ (as training.tensorboard: true; "
    "needs pip install 'snnexp[tensorboard]'). View: tensorboard --logdir experiment_results",
)


def set_threads(_ctx: click.Context, _param: click.Parameter, threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    expose_value=False,
    callback=set_threads,
    help="CPU threads for torch (default: torch's choice, one per core). Runs side by side "
    "are faster with --threads 1 each. First-spike runs are bitwise the same with any count, "
    "BPTT runs with training.thread_independent: true (else only with the same count).",
)


def device_text(device: Any) -> str:
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
