"""Preemption-safe training: runs killed by SIGTERM, SIGINT and SIGKILL at random moments and
resumed with `snnexp continue RUN` end bitwise identical to a run that was never stopped."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from snnexp.run.files import LOCK_FILE, RESUME_FILE
from tests.cli_runs import invoke, train_run, write_config
from tests.numeric import assert_same

EVERY_BATCH = {"checkpoint_minutes": 1e-9}
"""training.checkpoint_minutes that writes the resume state after every batch."""
LONGER = {
    "dataset": {"train_size": 1500},
    "training": {"epochs": 12, "savepoints": [4, 8], **EVERY_BATCH},
}
"""A run of about 3 s of training (12 epochs of 30 batches) that the kills can hit anywhere."""
UNTIMED = ("seconds",)
"""History columns of wall time, which differ between any two runs."""


def snnexp(*args: object) -> subprocess.Popen:
    """Start `python -m snnexp ARGS...` as its own process (so that signals reach only it)."""
    command = [sys.executable, "-m", "snnexp", *map(str, args), "--threads", "1", "--quiet"]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ
    )


def final_state(run_dir: Path, epoch: int) -> dict:
    """What must match bitwise: weights, optimizer, every RNG, plug-ins and the history."""
    checkpoint = torch.load(run_dir / f"epoch_{epoch}" / "checkpoint.pt", weights_only=True)
    checkpoint.pop("config")
    for column in UNTIMED:
        checkpoint["history"].pop(column)
    return checkpoint


def history_without_time(run_dir: Path) -> list[list[str]]:
    lines = (run_dir / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [k for k, name in enumerate(header) if name not in UNTIMED]
    return [[row.split(",")[k] for k in keep] for row in lines]


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    started = time.monotonic()
    while not condition():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.02)


def kill_and_resume(
    tmp_path: Path, overrides: dict, moments: list[tuple[signal.Signals, float]]
) -> Path:
    """Train the tiny config with ``overrides``, stopping it with each (signal, seconds after
    the start) in turn and resuming with `snnexp continue RUN` after each, until a run ends;
    asserts that at least ten signals hit a running process, and returns the finished run."""
    config = write_config(tmp_path, overrides)
    results = tmp_path / "interrupted"
    process = snnexp("train", config, "--results-dir", results)
    wait_for(lambda: any(results.glob("*/epoch_0")), process)
    (run_dir,) = results.iterdir()
    kills = 0
    for sig, delay in moments:
        time.sleep(delay)
        if process.poll() is not None:
            break
        process.send_signal(sig)
        kills += 1
        output = process.communicate()[0]
        if process.returncode == 0:
            break
        if sig != signal.SIGKILL:
            assert process.returncode in (128 + sig, -sig, 1), output
        process = snnexp("continue", run_dir)
    output = process.communicate()[0]
    assert process.returncode == 0, output
    assert kills >= 10
    assert not (run_dir / LOCK_FILE).exists()
    assert not (run_dir / RESUME_FILE).exists()
    assert not list(run_dir.glob(".*")), "staging left behind"
    return run_dir


def continue_until_it_trains(run_dir: Path) -> subprocess.Popen:
    """`snnexp continue RUN`, returned once it has written a resume state of its own."""
    started = time.time_ns()
    process = snnexp("continue", run_dir)
    resume = run_dir / RESUME_FILE
    wait_for(lambda: resume.is_file() and resume.stat().st_mtime_ns > started, process)
    return process


def assert_like_uninterrupted(tmp_path: Path, run_dir: Path, overrides: dict = LONGER) -> None:
    reference = train_run(tmp_path, overrides, results="uninterrupted", options=("--threads", "1"))
    epochs = overrides["training"]["epochs"]
    assert_same(final_state(run_dir, epochs), final_state(reference, epochs))
    assert history_without_time(run_dir) == history_without_time(reference)


def test_sigterm_writes_the_state_and_continue_resumes_bitwise(tmp_path):
    config = write_config(tmp_path, LONGER)
    results = tmp_path / "interrupted"
    process = snnexp("train", config, "--results-dir", results)
    wait_for(lambda: any(results.glob(f"*/{RESUME_FILE}")), process)
    (run_dir,) = results.iterdir()
    process.send_signal(signal.SIGTERM)
    output = process.communicate()[0]
    assert process.returncode == 128 + signal.SIGTERM, output
    assert f"resume with: snnexp continue {run_dir}" in output
    assert "stopped by SIGTERM at epoch" in output and "Traceback" not in output
    log = (run_dir / "log.txt").read_text().splitlines()
    assert log[-1].endswith(output.strip().splitlines()[-1]) and "run ended: stopped" in log[-1]
    assert (run_dir / RESUME_FILE).is_file() and not (run_dir / LOCK_FILE).exists()
    result = invoke("continue", run_dir, "--quiet")
    assert result.exit_code == 0, result.output
    assert "continuing" in result.output and "from the resume state (epoch" in result.output
    assert (run_dir / "log.txt").read_text().splitlines()[-1].endswith("run ended: completed")
    assert_like_uninterrupted(tmp_path, run_dir)


def test_sigint_sigkill_and_a_second_signal_lose_nothing(tmp_path):
    """A fast variant of the fault injection: a SIGINT, a SIGKILL, a SIGTERM delivered twice
    (the repeat is ignored) and a SIGTERM followed by a SIGINT (which aborts at once), each
    followed by `snnexp continue RUN`."""
    config = write_config(tmp_path, LONGER)
    results = tmp_path / "interrupted"
    process = snnexp("train", config, "--results-dir", results)
    wait_for(lambda: any(results.glob("*/epoch_4")), process)
    (run_dir,) = results.iterdir()
    process.send_signal(signal.SIGINT)
    assert process.wait() == 128 + signal.SIGINT
    process = continue_until_it_trains(run_dir)
    wait_for(lambda: (run_dir / "epoch_8").is_dir(), process)
    process.kill()
    process.wait()
    assert (run_dir / LOCK_FILE).exists()
    process = continue_until_it_trains(run_dir)
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGTERM)
    output = process.communicate()[0]
    assert process.returncode == 128 + signal.SIGTERM, output
    assert "stopped by SIGTERM at epoch" in output, "a repeated SIGTERM must not abort"
    process = continue_until_it_trains(run_dir)
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGINT)
    output = process.communicate()[0]
    assert process.returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM), output
    assert "aborted by a second SIG" in output and "Traceback" not in output, output
    result = invoke("continue", run_dir, "--quiet")
    assert result.exit_code == 0, result.output
    assert "taking it over" in (run_dir / "log.txt").read_text()
    assert_like_uninterrupted(tmp_path, run_dir)


@pytest.mark.slow
def test_fault_injection_at_random_moments(tmp_path):
    """At least ten kills at random moments, mixing SIGTERM, SIGINT and SIGKILL."""
    chooser = random.Random(int(os.environ.get("SNNEXP_FAULT_SEED", "0")))
    signals = [signal.SIGTERM, signal.SIGINT, signal.SIGKILL]
    moments = [(chooser.choice(signals), chooser.uniform(0.5, 4.5)) for _ in range(40)]
    longest = {**LONGER, "training": {**LONGER["training"], "epochs": 60}}
    run_dir = kill_and_resume(tmp_path, longest, moments)
    assert_like_uninterrupted(tmp_path, run_dir, longest)


CONFIGS = Path(__file__).resolve().parents[1] / "experiment_configs"
SMALL = (
    "dataset.train_size=300",
    "dataset.val_size=50",
    "dataset.test_size=50",
    "training.epochs=3",
    "training.savepoints=[]",
    "training.batch_size=50",
    "training.batch_size_eval=50",
)


@pytest.mark.parametrize(
    ("config", "settings"),
    [
        ("yin_yang_bptt.yaml", ("model.layer_sizes=[16, 3]", "training.input_noise.std=0.1")),
        ("yin_yang_deep_r.yaml", ("model.layer_sizes=[30, 3]",)),
        ("yin_yang_graph.yaml", ()),
    ],
)
def test_a_stop_inside_an_epoch_resumes_bitwise(tmp_path, config, settings):
    """Stopped by SIGTERM after batch 3 of epoch 2 and resumed from the resume state, BPTT
    (input noise), DEEP R (rewiring counters, active synapses) and a graph of blocks end as if
    they had not stopped."""
    from snnexp.config import load_config
    from snnexp.run.results import latest_state
    from snnexp.run.stopping import RunStopped
    from snnexp.run.trainer import Trainer

    cfg = load_config(CONFIGS / config, (*SMALL, *settings))
    reference = Trainer(cfg, run_dir=None, progress=False)
    reference.run(3, [])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stopped = Trainer(cfg, run_dir=run_dir, progress=False)
    between_batches = stopped._between_batches

    def signal_after_batch_3(progress):
        if stopped.epoch == 1 and progress.batch == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        between_batches(progress)

    stopped._between_batches = signal_after_batch_3
    with pytest.raises(RunStopped, match="stopped by SIGTERM at epoch 2, batch 3"):
        stopped.run(3, [])
    source, checkpoint = latest_state(run_dir)
    assert source == "the resume state (epoch 2, batch 3)"
    resumed = Trainer(cfg, run_dir=run_dir, progress=False)
    resumed.load_state_dict(checkpoint)
    resumed.run(3, [])
    finished, expected = resumed.state_dict(), reference.state_dict()
    for state in (finished, expected):
        state["history"].pop("seconds")
    assert_same(finished, expected)
