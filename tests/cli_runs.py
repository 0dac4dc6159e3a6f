"""Tiny Yin-Yang runs through the `snnexp` command, shared by the command-line tests."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from snnexp.cli import main

TINY = {
    "name": "tiny",
    "dataset": {"name": "yin_yang", "train_size": 300, "val_size": 100, "test_size": 100},
    "model": {"layer_sizes": [20, 3]},
    "training": {"epochs": 4, "batch_size": 50, "batch_size_eval": 100, "savepoints": [2]},
}


def write_config(folder: Path, overrides: dict | None = None, name: str = "tiny.yaml") -> Path:
    """TINY with each section of ``overrides`` updated, written to ``folder / name``."""
    data = yaml.safe_load(yaml.safe_dump(TINY))
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def invoke(*args: object) -> Result:
    """Run `snnexp ARGS...` in-process."""
    return CliRunner().invoke(main, [str(a) for a in args])


def train_run(
    tmp_path: Path,
    overrides: dict | None = None,
    results: str = "results",
    options: tuple[str, ...] = (),
) -> Path:
    """Train the tiny config (with ``overrides`` and extra command-line ``options``) into
    ``tmp_path / results``; returns the run folder."""
    config = write_config(tmp_path, overrides)
    result = invoke("train", config, "--results-dir", tmp_path / results, "--quiet", *options)
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / results).iterdir()
    return run_dir
