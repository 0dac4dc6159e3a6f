"""Work split among CPU threads in parts fixed by the work, never by the thread count.

torch's CPU kernels decide by themselves how to share a sum among their threads, so the last
bits of, e.g., a weight gradient depend on the number of threads. Code that must give bitwise
the same result with any thread count splits its work into parts fixed by the shapes alone,
runs each part single-threaded (in a pool of worker threads; torch releases the GIL inside its
operations) and adds the parts' results in their order (:func:`sum_in_order`).
:func:`torch_single_threaded` goes one step further for a whole computation: torch's own
kernels all run on one thread, and only the work split here uses the others.

Numba's parallel loops (the compiled LSNN and leaky layers, :func:`use_numba_threads`) run on
Numba's work-queue thread pool unless ``NUMBA_THREADING_LAYER`` names another: its threads
sleep between loops, where the OpenMP layer's spin for a while and slow down the products that
follow on the other threads (the 784-1000-10 BPTT step with ``training.thread_independent``,
2 threads: +22 % over plain torch with OpenMP, +4 % with the work queue).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numba
import torch

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

_Part = TypeVar("_Part")
_Result = TypeVar("_Result")
WORKERS: dict[int, ThreadPoolExecutor] = {}
"""The worker pools by size (their parts run while torch is set to one thread)."""
_pinned_threads: list[int] = []
"""The thread count torch had when :func:`torch_single_threaded` was entered (empty outside)."""


@contextmanager
def torch_single_threaded() -> Iterator[None]:
    """Inside, torch runs every operation of this process on one thread (its result then does
    not depend on the thread count), while :func:`map_single_threaded` still shares its parts
    among the threads torch had on entry. Nested uses keep the outer one's count."""
    if _pinned_threads:
        yield
        return
    _pinned_threads.append(torch.get_num_threads())
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(_pinned_threads.pop())


def use_numba_threads() -> None:
    """Numba's parallel loops run on as many threads as torch's (``--threads``; inside
    :func:`torch_single_threaded`, the count on entry: those loops split their work in parts
    fixed by the shapes)."""
    count = _pinned_threads[0] if _pinned_threads else torch.get_num_threads()
    numba.set_num_threads(max(1, min(count, numba.config.NUMBA_NUM_THREADS)))


def map_single_threaded(
    work: Callable[[_Part], _Result], parts: Sequence[_Part], device: torch.device
) -> list[_Result]:
    """``work`` on each part, its results in the parts' order, whichever thread computed them.

    On the CPU every part runs with torch single-threaded; with n > 1 threads (torch's count, or
    the count on entering :func:`torch_single_threaded`) and several parts, in min(n, parts)
    worker threads at once, else one after the other in this thread. torch's thread count is
    partly one setting for the whole process (MKL's), so it is 1 while the parts run and n
    again afterwards, and partly one of each thread (OpenMP's, read by e.g. small GEMMs; a new
    thread starts with the process's initial count), so each worker sets it to 1 once.
    On a GPU the parts are queued one after the other. Grad mode is that of the calling thread.
    """
    if device.type != "cpu":
        return [work(part) for part in parts]
    torch_threads = _pinned_threads[0] if _pinned_threads else torch.get_num_threads()
    n_threads = min(torch_threads, len(parts))
    if not _pinned_threads:
        torch.set_num_threads(1)
    try:
        if n_threads < 2:
            return [work(part) for part in parts]
        pool = WORKERS.get(n_threads)
        if pool is None:
            pool = WORKERS[n_threads] = ThreadPoolExecutor(
                n_threads, "snnexp-worker", initializer=torch.set_num_threads, initargs=(1,)
            )
        grad_enabled = torch.is_grad_enabled()

        def run(part: _Part) -> _Result:
            with torch.set_grad_enabled(grad_enabled):
                return work(part)

        return list(pool.map(run, parts))
    finally:
        if not _pinned_threads:
            torch.set_num_threads(torch_threads)


def sum_in_order(partials: Sequence[torch.Tensor]) -> torch.Tensor:
    """partials[0] + partials[1] + ... added one after the other (a fixed order of additions,
    unlike a reduction kernel, whose order may depend on the thread count)."""
    total = partials[0]
    for partial in partials[1:]:
        total = total + partial
    return total
