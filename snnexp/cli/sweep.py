"""`snnexp sweep`: many runs of one config over hyper-parameters and seeds, and their summary;
`snnexp compare`: the curves and table of any runs or sweeps side by side."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from snnexp.cli.shared import (
    data_dir_option,
    friendly_errors,
    logger,
    main,
    results_dir_option,
    setup_logging,
)
from snnexp.sweep.execute import EXECUTORS, SweepStopped


@main.command()
@click.argument("sweep_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@results_dir_option
@click.option(
    "--resume",
    "resume",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Finish the sweep in this folder: finished runs are skipped, interrupted ones continue "
    "from their latest state, failed ones are tried again.",
)
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="local",
    show_default=True,
    help="local: a pool of --jobs processes on this machine; ray: one Ray task per run (a local "
    "Ray, or the cluster at --address).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Runs at a time (default: the CPU cores divided by --threads).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CPU threads of each run (fixed for the sweep: resuming uses the first value).",
)
@click.option(
    "--address",
    default=None,
    help="Address of a running Ray cluster (with --executor ray; 'auto': the cluster this "
    "machine joined with `ray start`). The sweep folder must be on a file system all nodes share.",
)
@data_dir_option
@click.option(
    "--markdown", is_flag=True, help="Print summary.md when the sweep ends (to paste elsewhere)."
)
@friendly_errors
def sweep(
    sweep_file: Path | None,
    results_dir: Path,
    resume: Path | None,
    executor: str,
    jobs: int | None,
    threads: int,
    address: str | None,
    data_dir: Path | None,
    markdown: bool,
) -> None:
    """Train every point x seed of SWEEP_FILE as its own run, then summarise over seeds.

    \b
    Example (experiment_configs/sweeps/yin_yang_skip_step.yaml):
      config: ../yin_yang.yaml
      grid:
        training.weight_bumping.skip_step: [true, false]
      seeds: 10
    snnexp sweep experiment_configs/sweeps/yin_yang_skip_step.yaml --jobs 2
    writes experiment_results/yin_yang_skip_step_<date>_<time>/ with runs/ (one ordinary result
    folder per point x seed), summary.csv, summary.md and figures/. After an interruption:
      snnexp sweep --resume experiment_results/yin_yang_skip_step_<date>_<time>
    """
    from snnexp.run.lock import run_lock
    from snnexp.sweep.runner import SUMMARY_MD, Options, resume_sweep, run_sweep, start_sweep

    setup_logging()
    if (sweep_file is None) == (resume is None):
        raise click.UsageError("give either SWEEP_FILE (a new sweep) or --resume SWEEP_DIR")
    if address is not None and executor != "ray":
        raise click.UsageError("--address is the address of a Ray cluster: add --executor ray")
    workers = jobs or max(1, (os.cpu_count() or 1) // threads)
    options = Options(executor=executor, jobs=workers, address=address, data_dir=data_dir)
    if resume is not None:
        spec, runner = resume_sweep(resume, options)
        click.echo(f"resuming the sweep {runner.folder}")
    else:
        assert sweep_file is not None
        spec, runner = start_sweep(sweep_file, results_dir, threads, options)
        click.echo(f"sweep folder: {runner.folder}")
    try:
        with run_lock(runner.folder):
            failed = run_sweep(spec, runner, logger.info)
    except SweepStopped as stop:
        click.echo(str(stop), err=True)
        sys.exit(stop.exit_code)
    if markdown:
        click.echo((runner.folder / SUMMARY_MD).read_text(encoding="utf-8"))
    click.echo(f"summary: {runner.folder / SUMMARY_MD}")
    if failed:
        sys.exit(1)


@main.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("comparison.png"),
    show_default=True,
    help="The figure of the validation curves (format from the suffix: png, pdf, svg).",
)
@friendly_errors
def compare(folders: tuple[Path, ...], output: Path) -> None:
    """Overlay the validation curves of runs and sweeps (FOLDERS) and print their table.

    A run folder is one curve; a sweep folder gives one curve per point (mean +- sd over its
    seeds).

    \b
    Example:
      snnexp compare experiment_results/yin_yang_2026-12-07_10-00-00 \\
          experiment_results/yin_yang_skip_step_2026-12-07_11-00-00 --output cmp.png
    """
    from snnexp.sweep.compare import compare_folders

    click.echo(compare_folders(list(folders), output), nl=False)
    click.echo(f"figure: {output}")
