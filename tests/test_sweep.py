"""`snnexp sweep` and `snnexp compare`: the sweep file, runs as processes (local pool, Ray),
resuming after a kill, the summary against the single runs, an Optuna search."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from snnexp.config import ConfigError
from snnexp.sweep.spec import CONFIG_SEEDS, read_sweep
from snnexp.sweep.summary import is_finished, read_run_result
from tests.cli_runs import invoke, write_config

GRID_KEY = "training.weight_bumping.skip_step"
ACCURACY_COLUMNS = ("n", "planned") + tuple(
    f"{metric}_{stat}"
    for metric in ("test_accuracy", "val_accuracy", "val_accuracy_last10")
    for stat in ("mean", "sd", "min", "max")
)
"""The summary's columns that depend on the runs' results only (not on timing)."""


def write_sweep(folder: Path, body: dict, config_overrides: dict | None = None) -> Path:
    config = write_config(
        folder, {"training": {"epochs": 2, "savepoints": []}, **(config_overrides or {})}
    )
    path = folder / "tiny_sweep.yaml"
    path.write_text(yaml.safe_dump({"config": config.name, **body}))
    return path


def sweep_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "snnexp", "sweep", *(str(a) for a in args)]


def run_sweep(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`snnexp sweep ARGS` to its end in a separate process, its output captured."""
    return subprocess.run(
        sweep_command(*args), capture_output=True, text=True, timeout=600, env=env
    )


def only_folder(results: Path) -> Path:
    (folder,) = [p for p in results.iterdir() if p.is_dir()]
    return folder


def accuracy_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "summary.csv").open() as f:
        return [
            {key: row[key] for key in ("point", GRID_KEY, *ACCURACY_COLUMNS)}
            for row in csv.DictReader(f)
        ]


def attempts(folder: Path, run: str) -> list[dict]:
    return json.loads((folder / "attempts" / f"{run}.json").read_text())


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 x 2 sweep (skip_step x seeds) run to its end with the local pool, 2 at a time."""
    folder = tmp_path_factory.mktemp("sweep")
    sweep_file = write_sweep(folder, {"grid": {GRID_KEY: [True, False]}, "seeds": 2})
    done = run_sweep(sweep_file, "--jobs", 2, "--results-dir", folder / "results")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sweep folder:" in done.stdout
    return only_folder(folder / "results")


def test_sweep_file_is_read_with_every_problem_named(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "config": config.name,
                "gird": {"a": [1]},
                "random": {
                    "samples": 2,
                    "keys": {
                        "learning.optimizer.lr": {"log_uniform": [0, 1]},
                        "model.weight_std": {"normall": [0, 1]},
                    },
                },
                "seeds": 0,
            }
        )
    )
    with pytest.raises(ConfigError) as error:
        read_sweep(path)
    message = str(error.value)
    assert "gird: unknown sweep key; did you mean 'grid'?" in message
    assert "log_uniform needs 0 < LOW" in message
    assert "unknown distribution 'normall'" in message
    assert "seeds: must be a whole number >= 1, got 0 (int)" in message


def test_points_are_the_grid_times_seeded_random_draws(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    path = tmp_path / "sweep.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "config": config.name,
                "grid": {GRID_KEY: [True, False]},
                "random": {
                    "samples": 3,
                    "seed": 5,
                    "keys": {
                        "learning.optimizer.lr": {"log_uniform": [1e-4, 1e-1]},
                        "training.batch_size": {"choice": [25, 50]},
                        "model.weight_std": {"uniform": [0.5, 1.0]},
                        "training.epochs": {"int_range": [1, 3]},
                    },
                },
                "seeds": 3,
            }
        )
    )
    spec = read_sweep(path)
    points = spec.fixed_points()
    assert len(points) == 6
    assert [p[GRID_KEY] for p in points] == [True] * 3 + [False] * 3
    assert points == read_sweep(path).fixed_points()
    for point in points:
        assert 1e-4 <= point["learning.optimizer.lr"] <= 1e-1
        assert point["training.batch_size"] in (25, 50)
        assert point["training.epochs"] in (1, 2, 3)
    assert spec.seeds == [CONFIG_SEEDS, 1, 2]


def test_a_point_that_gives_no_valid_config_is_refused_before_any_run(tmp_path: Path) -> None:
    sweep_file = write_sweep(tmp_path, {"grid": {"training.batch_sise": [10, 20]}})
    result = invoke("sweep", sweep_file, "--results-dir", tmp_path / "results")
    assert result.exit_code == 1
    assert "does not give a valid config" in result.output
    assert "did you mean 'batch_size'" in result.output
    assert not (tmp_path / "results").exists()


def test_summary_equals_the_single_runs(local_sweep: Path) -> None:
    runs = sorted(p.name for p in (local_sweep / "runs").iterdir())
    assert runs == ["p00_config-seeds", "p00_seed1", "p01_config-seeds", "p01_seed1"]
    rows = {row["point"]: row for row in csv.DictReader((local_sweep / "summary.csv").open())}
    for point in ("p00", "p01"):
        results = [
            read_run_result(local_sweep / "runs" / f"{point}_{s}")
            for s in ("config-seeds", "seed1")
        ]
        for metric in ("test_accuracy", "val_accuracy", "val_accuracy_last10"):
            values = [r.metrics[metric] for r in results]
            assert float(rows[point][f"{metric}_mean"]) == pytest.approx(np.mean(values), abs=0)
            assert float(rows[point][f"{metric}_min"]) == min(values)
            assert float(rows[point][f"{metric}_max"]) == max(values)
            assert float(rows[point][f"{metric}_sd"]) == pytest.approx(np.std(values, ddof=1))
        assert rows[point]["n"] == "2"
    # the run of the config's seeds is the run `snnexp train` gives for that setting
    run = local_sweep / "runs" / "p01_seed1"
    recorded = attempts(local_sweep, "p01_seed1")
    assert len(recorded) == 1 and recorded[0]["exit_code"] == 0
    assert (
        "--set training.weight_bumping.skip_step=false --seed 1 --threads 1"
        in recorded[0]["command"]
    )
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["seeds"]["torch"] == 1
    summary = (local_sweep / "summary.md").read_text()
    assert "| p00 | true | 2 |" in summary
    assert (local_sweep / "figures" / f"test_accuracy_by_{GRID_KEY}.png").is_file()
    assert (local_sweep / "figures" / "validation_curves.png").is_file()


def _wait_for(condition, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_resume_after_a_kill_finishes_only_what_was_missing(
    tmp_path: Path, local_sweep: Path
) -> None:
    sweep_file = write_sweep(tmp_path, {"grid": {GRID_KEY: [True, False]}, "seeds": 2})
    results = tmp_path / "results"
    driver = subprocess.Popen(
        sweep_command(sweep_file, "--jobs", 1, "--results-dir", results),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: results.exists() and any(results.iterdir()))
        folder = only_folder(results)
        second = folder / "runs" / "p00_seed1"
        _wait_for(lambda: (second / "epoch_0").is_dir() or driver.poll() is not None)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    # the killed sweep's running run was told to stop (SIGTERM) and saved its state
    _wait_for(lambda: not list((folder / "runs").glob("*/run.lock")), timeout=120)
    finished_before = sorted(p.name for p in (folder / "runs").iterdir() if is_finished(p))
    assert finished_before == ["p00_config-seeds"]
    done = run_sweep("--resume", folder, "--jobs", 2)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 run(s) finished before; skipped" in done.stdout + done.stderr
    assert len(attempts(folder, "p00_config-seeds")) == 1
    second_attempts = (
        attempts(folder, "p00_seed1") if (folder / "attempts" / "p00_seed1.json").exists() else []
    )
    assert [a["command"].split()[1] for a in second_attempts][-1:] == ["continue"]
    assert accuracy_rows(folder) == accuracy_rows(local_sweep)


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray not installed (pip install 'snnexp[sweep]')",
)
def test_ray_executor_gives_the_same_summary(tmp_path: Path, local_sweep: Path) -> None:
    sweep_file = write_sweep(tmp_path, {"grid": {GRID_KEY: [True, False]}, "seeds": 2})
    done = run_sweep(
        sweep_file,
        "--executor",
        "ray",
        "--jobs",
        2,
        "--results-dir",
        tmp_path / "results",
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    folder = only_folder(tmp_path / "results")
    assert accuracy_rows(folder) == accuracy_rows(local_sweep)


@pytest.mark.skipif(
    importlib.util.find_spec("optuna") is None,
    reason="Optuna not installed (pip install 'snnexp[sweep]')",
)
def test_tpe_search_reports_the_best_point(tmp_path: Path) -> None:
    sweep_file = write_sweep(
        tmp_path,
        {
            "random": {"keys": {"learning.optimizer.lr": {"log_uniform": [1e-4, 1e-1]}}},
            "search": {"sampler": "tpe", "trials": 8, "objective": "val_accuracy"},
            "seeds": [3],
        },
        {"training": {"epochs": 1, "savepoints": []}, "dataset": {"train_size": 100}},
    )
    done = run_sweep(sweep_file, "--jobs", 2, "--results-dir", tmp_path / "results")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = only_folder(tmp_path / "results")
    rows = list(csv.DictReader((folder / "summary.csv").open()))
    assert len(rows) == 8
    best = max(rows, key=lambda row: float(row["val_accuracy_mean"]))
    line = next(line for line in (done.stdout + done.stderr).splitlines() if "Best point" in line)
    assert f": {best['point']} learning.optimizer.lr = {best['learning.optimizer.lr']}" in line
    assert "Best point" in (folder / "summary.md").read_text()
    lrs = {float(row["learning.optimizer.lr"]) for row in rows}
    assert len(lrs) == 8 and all(1e-4 <= lr <= 1e-1 for lr in lrs)


def test_compare_overlays_runs_and_sweeps(tmp_path: Path, local_sweep: Path) -> None:
    run = local_sweep / "runs" / "p00_seed1"
    output = tmp_path / "cmp.png"
    result = invoke("compare", run, local_sweep, "--output", output)
    assert result.exit_code == 0, result.output
    assert output.is_file()
    assert "| p00_seed1 |  | 1 |" in result.output or "| p00_seed1 | 1 |" in result.output
    assert f"| {local_sweep.name}/p01 | 2 |" in result.output
    bad = invoke("compare", tmp_path)
    assert bad.exit_code == 1 and "neither a finished run nor a sweep folder" in bad.output


def test_a_failed_run_is_reported_and_the_others_finish(tmp_path: Path) -> None:
    sweep_file = write_sweep(
        tmp_path,
        {"grid": {"model.weight_mean": [[1.0e39, 0.5], [1.5, 0.5]]}},
        {"model": {"layer_sizes": [20, 3], "dtype": "float32"}},
    )
    done = run_sweep(sweep_file, "--jobs", 2, "--results-dir", tmp_path / "results")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    folder = only_folder(tmp_path / "results")
    log = folder / "logs" / "p00_config-seeds.txt"
    assert (
        f"1 run(s) did not finish: p00_config-seeds (failed with exit code 1, log: {log})" in output
    )
    assert "the initial weights layers.0.weight are not finite" in log.read_text()
    assert is_finished(folder / "runs" / "p01_config-seeds")
    rows = list(csv.DictReader((folder / "summary.csv").open()))
    assert [(row["point"], row["n"]) for row in rows] == [("p00", "0"), ("p01", "1")]


def test_sweep_usage_errors_name_the_fix(tmp_path: Path) -> None:
    assert "give either SWEEP_FILE (a new sweep) or --resume SWEEP_DIR" in invoke("sweep").output
    sweep_file = write_sweep(tmp_path, {"seeds": 2})
    result = invoke("sweep", sweep_file, "--address", "auto")
    assert result.exit_code == 2 and "add --executor ray" in result.output
    result = invoke("sweep", "--resume", tmp_path)
    assert result.exit_code == 1 and "is not a sweep folder (no plan.json)" in result.output


def test_sigterm_stops_the_runs_and_resume_continues_them(tmp_path: Path) -> None:
    sweep_file = write_sweep(
        tmp_path, {"seeds": 2}, {"training": {"epochs": 120, "savepoints": []}}
    )
    results = tmp_path / "results"
    driver = subprocess.Popen(
        sweep_command(sweep_file, "--jobs", 2, "--results-dir", results),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(lambda: results.exists() and any(results.iterdir()))
        folder = only_folder(results)
        runs = [folder / "runs" / name for name in ("p00_config-seeds", "p00_seed1")]
        _wait_for(lambda: all((run / "epoch_0").is_dir() for run in runs))
        driver.send_signal(signal.SIGTERM)
        output, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 143, output
    assert f"Finish it with: snnexp sweep --resume {folder}" in output
    for run in runs:
        assert (run / "resume.pt").is_file()
        assert "run ended: stopped by SIGTERM" in (run / "log.txt").read_text()
    assert (folder / "summary.md").is_file()
    done = run_sweep("--resume", folder, "--jobs", 2)
    assert done.returncode == 0, done.stdout + done.stderr
    for run in runs:
        assert is_finished(run)
        assert [a["command"].split()[1] for a in attempts(folder, run.name)] == [
            "train",
            "continue",
        ]
