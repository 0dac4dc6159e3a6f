"""Wall-clock timing of a callable on the CPU or a CUDA device (shared by the benchmarks)."""

from __future__ import annotations

import argparse
import resource
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


def cross_entropy_step(
    forward: Callable[[], torch.Tensor], labels: torch.Tensor, optimizer: torch.optim.Optimizer
) -> torch.Tensor:
    """One training step: cross-entropy of ``forward()``'s scores, backward, optimizer step."""
    loss = torch.nn.functional.cross_entropy(forward(), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def peak_memory_text(device: torch.device) -> str:
    """The process's peak memory so far: CUDA allocations on a GPU, else the resident set."""
    if device.type == "cuda":
        return f"peak memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB (CUDA allocated)"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"peak memory {peak:.0f} MiB (RSS)"


def step_arguments(
    description: str,
    repeats: int,
    more: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The options of the training-step benchmarks: --batch, --steps, --repeats, --device, and
    those ``more`` adds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--device", default="auto")
    if more is not None:
        more(parser)
    return parser.parse_args()


def print_snnexp_step(seconds: float, batch: int, device: torch.device) -> None:
    """The device, the thread count and snnexp's time per training step."""
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    print(
        f"snnexp:   {seconds * 1e3:8.1f} ms/step  {batch / seconds:9.0f} samples/s  "
        f"{peak_memory_text(device)}"
    )


def compare_with_snntorch(
    seconds: float,
    theirs: Callable[[], object] | None,
    batch: int,
    repeats: int,
    device: torch.device,
) -> None:
    """Time snnTorch's training step ``theirs`` (None: not installed) and print the ratio."""
    if theirs is None:
        print("snnTorch not installed (pip install '.[bench]') - no comparison")
        return
    their_seconds = seconds_per_call(theirs, repeats, device)
    print(f"snnTorch: {their_seconds * 1e3:8.1f} ms/step  {batch / their_seconds:9.0f} samples/s")
    print(f"speed-up of snnexp over snnTorch: {their_seconds / seconds:.2f}x")
