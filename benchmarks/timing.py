"""Wall-clock timing of a callable on the CPU or a CUDA device (shared by the benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels (CUDA runs them asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(
    step: Callable[[], object], repeats: int, device: torch.device, warmup: int = 2
) -> float:
    """Mean seconds per call of ``step`` over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    synchronize(device)
    return (time.perf_counter() - started) / repeats
