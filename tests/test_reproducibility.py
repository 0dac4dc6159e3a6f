"""The same config and seed give bitwise the same run with any number of CPU threads."""

from __future__ import annotations

import pytest
import torch

from snnexp.functional.event import scan
from tests.cli_runs import train_run
from tests.numeric import assert_same

WIDE = {
    "dataset": {"train_size": 600},
    "model": {"layer_sizes": [300, 3]},
    "training": {"epochs": 2, "batch_size": 100, "savepoints": []},
}


@pytest.mark.parametrize("rule", ["first_spike_et", "first_spike_dt"])
def test_first_spike_training_is_bitwise_the_same_with_1_2_and_4_threads(
    tmp_path, monkeypatch, rule
):
    """Layers over PARALLEL_SIZE and GRADIENT_GROUPS_SIZE (here: every layer) split their
    samples among the threads; weights, optimizer state, history (but wall time) and saved
    outputs must not change."""
    monkeypatch.setattr(scan, "PARALLEL_SIZE", 0)
    monkeypatch.setattr(scan, "GRADIENT_GROUPS_SIZE", 0)
    overrides = {**WIDE, "learning": {"rule": rule}}
    if rule == "first_spike_dt":
        overrides["model"] = {**WIDE["model"], "neuron": {"tau_mem": 2.0, "tau_syn": 1.0}}
    runs = {}
    for threads in (1, 2, 4):
        run_dir = train_run(
            tmp_path, overrides, results=f"threads_{threads}", options=("--threads", threads)
        )
        checkpoint = torch.load(run_dir / "epoch_2" / "checkpoint.pt", weights_only=True)
        checkpoint["history"].pop("seconds")
        checkpoint.pop("config")
        outputs = (run_dir / "epoch_2" / "outputs_test.npz").read_bytes()
        runs[threads] = (checkpoint, outputs)
    assert {2, 4} <= set(scan._WORKERS), "the work was not shared among threads"
    reference, reference_outputs = runs[1]
    for threads in (2, 4):
        checkpoint, outputs = runs[threads]
        assert_same(checkpoint, reference, f"checkpoint with {threads} threads")
        assert outputs == reference_outputs, threads
