"""What goes wrong around a run gets one message naming the problem and the fix, no traceback,
and loses nothing already written: divergence, a dead network, a second writer, a folder that
cannot be created, a full disk, a damaged history, leftovers of a killed process."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from snnexp.run import results
from snnexp.run.files import LOCK_FILE, RESUME_FILE
from tests.cli_runs import invoke, train_run, write_config

BPTT = {
    "model": {
        "neuron": {"type": "leaky", "tau_mem": 1.0},
        "dt": 0.1,
        "sim_time": 2.5,
        "readout": "max_membrane",
        "output": "membrane",
        "weight_init": "uniform_fan_in",
        "weight_mean": [0.0, 0.0],
        "weight_std": [1.0, 1.0],
        "bias_times": [],
        "dtype": "float32",
    },
    "dataset": {"encoding": {"type": "rate", "rate_gain": 0.5}},
    "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
    "training": {"max_dw_norm": None},
}


def train(tmp_path, overrides=None, *options):
    config = write_config(tmp_path, overrides)
    return invoke("train", config, "--results-dir", tmp_path / "results", "--quiet", *options)


def the_run(tmp_path):
    (run_dir,) = (tmp_path / "results").iterdir()
    return run_dir


def log_end(run_dir) -> str:
    return (run_dir / "log.txt").read_text().splitlines()[-1]


def assert_clean_failure(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_non_finite_weights_stop_the_run_before_anything_saves_them(tmp_path, monkeypatch):
    step = torch.optim.Adam.step

    def poisoned_step(self, *args, **kwargs):
        loss = step(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0][0, 0] = float("inf")
        return loss

    monkeypatch.setattr(torch.optim.Adam, "step", poisoned_step)
    result = train(tmp_path)
    assert_clean_failure(
        result,
        "training diverged in epoch 1, batch 1: layers.0.weight holds non-finite values",
        "training.max_dw_norm",
        "the savepoints written so far are intact",
    )
    run_dir = the_run(tmp_path)
    assert sorted(p.name for p in run_dir.glob("epoch_*")) == ["epoch_0"]
    assert not (run_dir / RESUME_FILE).exists() and not (run_dir / LOCK_FILE).exists()
    assert log_end(run_dir).split(" ", 3)[-1].startswith("run ended: diverged: training diverged")


def test_a_nan_loss_names_the_fixes_of_the_rule(tmp_path, monkeypatch):
    from snnexp.losses.readout import ReadoutLoss

    monkeypatch.setattr(
        ReadoutLoss, "training_loss", lambda self, *args: torch.tensor(float("nan"))
    )
    result = train(tmp_path, BPTT)
    assert_clean_failure(result, "epoch 1, batch 1: the loss became nan", "model.weight_std")
    assert "max_dw_norm" not in result.output


def test_initial_weights_that_are_not_finite_are_a_config_error(tmp_path):
    overrides = {"model": {"dtype": "float32", "weight_mean": [1e300, 1.0]}}
    result = train(tmp_path, overrides)
    assert_clean_failure(result, "initial weights layers.0.weight are not finite", "weight_mean")
    assert not (tmp_path / "results").exists()


def test_a_dead_network_is_reported(tmp_path):
    silent = {
        "model": {"weight_mean": [-5.0, -5.0], "weight_std": [0.01, 0.01]},
        "training": {"weight_bumping": {"enabled": False}},
    }
    result = train(tmp_path, silent)
    assert result.exit_code == 0, result.output
    assert "epoch 1: the label layer gave no valid prediction" in result.output
    assert "the network may be dead" in (the_run(tmp_path) / "log.txt").read_text()


def test_an_epoch_without_any_optimizer_step_is_reported(tmp_path):
    """Every batch needs bumping (no spike may be missing) and skip_step skips its step."""
    stalled = {
        "model": {"weight_mean": [-5.0, -5.0], "weight_std": [0.01, 0.01]},
        "training": {"weight_bumping": {"max_missing": [0.0, 0.0], "skip_step": True}},
    }
    result = train(tmp_path, stalled)
    assert result.exit_code == 0, result.output
    assert "epoch 1: no batch made an optimizer step" in result.output
    assert "nan" in (the_run(tmp_path) / "history.csv").read_text().splitlines()[2]


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(tmp_path):
    run_dir = train_run(tmp_path)
    lock = run_dir / LOCK_FILE
    running = os.getppid()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": running}))
    result = invoke("continue", run_dir, "2", "--quiet")
    assert_clean_failure(result, f"process {running} on {socket.gethostname()}", "in use")
    lock.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert_clean_failure(invoke("continue", run_dir, "2", "--quiet"), "on elsewhere", "remove")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": int(gone.stdout)}))
    result = invoke("continue", run_dir, "2", "--quiet")
    assert result.exit_code == 0, result.output
    assert "no longer running; taking it over" in result.output
    assert not lock.exists()


@pytest.mark.parametrize("below", ["a_file", "/proc/snnexp_results"])
def test_a_results_folder_that_cannot_be_created(tmp_path, below):
    (tmp_path / "a_file").write_text("not a folder")
    target = tmp_path / below / "results" if below == "a_file" else below
    config = write_config(tmp_path)
    result = invoke("train", config, "--results-dir", target, "--quiet")
    assert_clean_failure(result, "cannot create the result folder", "--results-dir")


def full_disk_at(monkeypatch, name: str, after: int = 0) -> None:
    """Make the (after + 1)-th write of a file called ``name`` fail with ENOSPC."""
    write = results.atomic_write_bytes
    calls = {"n": 0}

    def failing(path, data):
        if path.name == name:
            calls["n"] += 1
            if calls["n"] > after:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write(path, data)

    monkeypatch.setattr(results, "atomic_write_bytes", failing)


def test_a_full_disk_at_a_savepoint_keeps_the_earlier_ones(tmp_path, monkeypatch):
    full_disk_at(monkeypatch, "checkpoint.pt", after=1)
    result = train(tmp_path)
    assert_clean_failure(
        result, "no space left on the device", "to write savepoint epoch_2 (it needs", "MiB"
    )
    run_dir = the_run(tmp_path)
    assert sorted(p.name for p in run_dir.glob("epoch_*")) == ["epoch_0"]
    assert not list(run_dir.glob(".*")), "the half-written savepoint must be removed"
    assert "run ended: failed with ResultsError: no space left" in log_end(run_dir)
    monkeypatch.undo()
    full_disk_at(monkeypatch, "history.csv")
    assert_clean_failure(invoke("continue", run_dir, "--quiet"), "no space left on the device")
    monkeypatch.undo()
    resumed = invoke("continue", run_dir, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert "from savepoint epoch_0" in resumed.output


def test_a_damaged_history_is_drawn_from_the_savepoint_and_kept_by_continue(tmp_path):
    run_dir = train_run(tmp_path)
    (run_dir / "history.csv").write_bytes(b"\x00\xff garbage")
    result = invoke("eval", run_dir, "--only", "training_curves")
    assert result.exit_code == 0, result.output
    assert "history.csv is damaged or empty" in result.output
    assert (run_dir / "epoch_4" / "figures" / "training_curves.png").is_file()
    (run_dir / "history.csv").write_text("")
    result = invoke("continue", run_dir, "2", "--quiet")
    assert result.exit_code == 0, result.output
    assert (run_dir / "history.csv").read_text().count("\n") == 6
    (backup,) = run_dir.glob("history.before-continue-*.csv")
    assert backup.read_text() == ""


def test_continue_without_epoch_on_a_finished_run_does_nothing(tmp_path):
    run_dir = train_run(tmp_path)
    before = (run_dir / "epoch_4" / "checkpoint.pt").read_bytes()
    result = invoke("continue", run_dir, "--quiet")
    assert result.exit_code == 0, result.output
    assert "is complete: trained to training.epochs = 4" in result.output
    assert (run_dir / "epoch_4" / "checkpoint.pt").read_bytes() == before
    refused = invoke("continue", run_dir, "latest", "3", "--quiet")
    assert refused.exit_code == 2 and "SAVEPOINTS must lie after it" in refused.output


def test_continue_removes_what_a_killed_run_left_half_written(tmp_path):
    run_dir = train_run(tmp_path)
    (run_dir / ".epoch_3.x1y2.partial").mkdir()
    (run_dir / ".history.csv.abc.tmp").write_text("half")
    (run_dir / "epoch_2" / ".checkpoint.pt.def.tmp").write_text("half")
    result = invoke("continue", run_dir, "2", "--quiet")
    assert result.exit_code == 0, result.output
    assert "removed .epoch_3.x1y2.partial, left half-written" in result.output
    assert not list(run_dir.glob(".*")) and not list((run_dir / "epoch_2").glob(".*"))


def test_going_back_sets_the_abandoned_continuation_aside(tmp_path):
    """After `continue RUN 2 3` the old epoch_4 (and a resume state) belong to an abandoned
    continuation: kept under another name, and `continue RUN` goes on from epoch_3."""
    run_dir = train_run(tmp_path)
    (run_dir / RESUME_FILE).write_bytes(b"an abandoned state")
    refused = invoke("continue", run_dir, "2", "1", "--quiet")
    assert refused.exit_code == 2 and (run_dir / RESUME_FILE).is_file(), "nothing set aside yet"
    result = invoke("continue", run_dir, "2", "3", "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in run_dir.glob("epoch_*") if p.name[6:].isdigit()) == [
        "epoch_0",
        "epoch_2",
        "epoch_3",
    ]
    assert len(list(run_dir.glob("epoch_4.replaced-*"))) == 1
    assert len(list(run_dir.glob("resume.pt.replaced-*"))) == 1
    resumed = invoke("continue", run_dir, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert "from savepoint epoch_3 to epoch 4" in resumed.output
