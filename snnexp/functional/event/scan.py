r"""The shared engine of the exact first-spike rules: a scan over time-sorted inputs.

For one output neuron j of one sample b, with inputs sorted by time, the membrane while the
causal set is the first k inputs is a closed-form function of two cumulative sums

    a_k = sum_{i<=k} w_ij f_1(t_i),     b_k = sum_{i<=k} w_ij f_2(t_i),

(ET: f_1 = e^{t/tau}, f_2 = (t/tau) e^{t/tau}; DT: the two exponentials of the PSP). The first
spike lies in the interval [t_k, t_{k+1}) of the first k whose membrane reaches threshold
there, which each rule decides with cheap arithmetic on (a_k, b_k, t_k, t_{k+1}).

On the CPU the scan runs as compiled loops (:mod:`snnexp.functional.event.kernels`: one sample at a
time, each input's weight row added to the outputs still scanning, a cheap bound before the
exact test). On GPUs it runs as the vectorised torch engine below, which gives the same times
and gradients up to rounding (``COMPILED_CPU_SCAN = False`` runs it on the CPU too).

Rather than materialising every (sample, input, output) triple, the torch engine walks the sorted
inputs in chunks of growing size (32, 64, 128, ...) over the *pairs* (b, j) that have not spiked
yet, carrying a_k and b_k from chunk to chunk. A pair leaves the scan at its first crossing, or when
its remaining inputs never spike; inputs that never spike (sorted last) are not scanned at all. Work
and memory therefore scale with the number of inputs before each output's first spike — for
MNIST-sized layers, where outputs fire after a small part of the 784 inputs, far less than batch x
inputs x outputs — and never with the (batch, N, N, M) expansion of the published code. Small layers
take one chunk. Samples are scanned a few at a time (``PAIR_BLOCK`` pairs), so that a chunk's arrays
stay in the CPU caches: all pairs of a block, laid out (sample, input, output) with whole weight
rows gathered, while most of them still scan, then the pairs left one by one. On a CPU with several
torch threads, large layers share their blocks among the threads.

The backward pass walks the causal inputs of each spiking pair (the torch engine: in the same
chunks) and accumulates, by the implicit function theorem at u(t_out) = theta,

    dL/dw_ij  += -psp(D) / slope * dL/dt_j,        dL/dt_i += w_ij drive(D) / slope * dL/dt_j,

with D = (t_out - t_i) / tau and slope = du/dt at the crossing; psp and drive are the rule's.
On a GPU these sums run in PyTorch's deterministic mode (:func:`_deterministic_on`), so that a
training run gives the same weights every time and ``continue`` matches not stopping.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import NamedTuple, Protocol, TypeVar

import numpy as np
import torch

from snnexp.functional.event import kernels
from snnexp.functional.threads import map_single_threaded, sum_in_order

FIRST_CHUNK = 32
PAIR_BLOCK = 2048
"""Pairs scanned together by the torch engine on the CPU (rounded to whole samples). Measured on 2
cores with 2 MB of L2 each, one forward pass of 784 -> 350 at batch 80: 112 ms in blocks of 2048
pairs, 200 ms in blocks of 8192; 256 -> 128 at batch 50: 13 ms with 2048, 26 ms with 4096."""
GPU_PAIR_BLOCK = 262144
"""Pairs scanned together on a GPU, where each block costs kernel launches, not cache misses."""
DENSE_FRACTION = 0.8
"""A block of samples is scanned for all its pairs while at least this fraction of them is
still scanning (gathers of whole weight rows, no per-pair indexing), pair by pair after that
(torch's element-wise indexing costs several arithmetic operations per element on the CPU, but
finished pairs cost nothing). Measured, 784 -> 350 at batch 80 with initial weights, where
outputs spike after hundreds of inputs: forward 126 ms with 0.8, 287 ms with 1/3."""
PARALLEL_SIZE = 1 << 20
"""Smallest layer (pairs x inputs) whose forward scan shares its blocks (compiled kernels:
samples) among torch's threads, and only with at least PARALLEL_BLOCKS of them per thread.
Compiled kernels, 784 -> 350 at batch 80, initial weights, forward + backward: 30 + 15 ms on one
thread, 20 + 10 ms on two; 256 -> 128 at batch 50: 5 ms either way. Torch engine, measured on 2
idle cores, forward + backward with 2 threads vs 1: 784 -> 350 at batch 80 (16 blocks) 117 vs
138 ms (trained weights), 147 vs 198 ms (initial weights); 256 -> 128 at batch 50 (4 blocks)
17.7 vs 16.9 ms."""
PARALLEL_BLOCKS = 4
GRADIENT_GROUPS_SIZE = 1 << 22
"""Smallest layer (pairs x inputs) whose backward pass sums its weight gradient in
GRADIENT_GROUPS groups of blocks (the blocks k, k + GRADIENT_GROUPS, ...), which threads share;
smaller layers sum it in one pass over all samples. The partition depends on the layer alone,
never on the thread count, so the gradient is bitwise the same with any number of threads. It
is the partition that earlier versions used with two threads for large layers and with one for
the others, which keeps the runs reported in README.md (MNIST 784 -> 350 at batch 80 on two
threads, 16x16 MNIST 256 -> 128 at batch 50 on one) bitwise reproducible."""
GRADIENT_GROUPS = 2
COMPILED_CPU_SCAN = True
"""Run the scan on the CPU with the compiled kernels (off: the torch engine, as on GPUs)."""

_Result = TypeVar("_Result")


def use_kernels(device: torch.device) -> bool:
    """Whether the scan runs the compiled kernels of :mod:`snnexp.functional.event.kernels` (on the
    CPU, unless COMPILED_CPU_SCAN is off) rather than the vectorised torch engine (GPUs)."""
    return device.type == "cpu" and COMPILED_CPU_SCAN


def _blocks(n_batch: int, n_out: int, device: torch.device) -> list[slice]:
    """Consecutive blocks of samples with about PAIR_BLOCK (GPU_PAIR_BLOCK) pairs each."""
    pairs = PAIR_BLOCK if device.type == "cpu" else GPU_PAIR_BLOCK
    rows = max(1, pairs // n_out)
    return [slice(first, min(n_batch, first + rows)) for first in range(0, n_batch, rows)]


def _sample_blocks(n_batch: int) -> list[slice]:
    """One block per sample: the compiled kernels' unit of work for the thread pool."""
    return [slice(row, row + 1) for row in range(n_batch)]


def _rows(blocks: list[slice]) -> np.ndarray:
    """The samples of single-sample ``blocks``, as the kernels take them."""
    return np.array([block.start for block in blocks], dtype=np.int64)


def _without_grad(work: Callable[[list[slice]], _Result]) -> Callable[[list[slice]], _Result]:
    """``work`` under torch.no_grad(): grad mode is per thread, and a new thread has it on."""

    def run(blocks: list[slice]) -> _Result:
        with torch.no_grad():
            return work(blocks)

    return run


def _thread_groups(blocks: list[slice], size: int, device: torch.device) -> list[list[slice]]:
    """The blocks of a forward scan of ``size`` = pairs x inputs, one group per thread on the
    CPU (blocks k, k + n, ... for thread k of n) where the layer is large enough, else one
    group (the spike times do not depend on the partition)."""
    n_threads = torch.get_num_threads() if device.type == "cpu" else 1
    if n_threads < 2 or size < PARALLEL_SIZE or len(blocks) < PARALLEL_BLOCKS * n_threads:
        return [blocks]
    return [blocks[k::n_threads] for k in range(n_threads)]


def _gradient_groups(blocks: list[slice], size: int, device: torch.device) -> list[list[slice]]:
    """The fixed groups in which a backward pass of ``size`` on the CPU sums its weight gradient
    (see :data:`GRADIENT_GROUPS_SIZE`); one group on a GPU."""
    if (
        device.type != "cpu"
        or size < GRADIENT_GROUPS_SIZE
        or len(blocks) < PARALLEL_BLOCKS * GRADIENT_GROUPS
    ):
        return [blocks]
    return [blocks[k::GRADIENT_GROUPS] for k in range(GRADIENT_GROUPS)]


def _run_groups(
    work: Callable[[list[slice]], _Result], groups: list[list[slice]], device: torch.device
) -> list[_Result]:
    """``work`` on each group of blocks under torch.no_grad(), in worker threads that run torch
    single-threaded (:func:`snnexp.functional.threads.map_single_threaded`): the blocks are too
    small for torch's own parallelism, which slows them down (784 -> 350 at batch 80: forward
    99 ms on one thread, 154 ms with torch on two, 80 ms in two block threads). Returns the
    groups' results in group order, whichever thread computed them."""
    return map_single_threaded(_without_grad(work), groups, device)


class SpikeRule(Protocol):
    """What a first-spike rule supplies to the scan (times are in units of ``unit``)."""

    unit: float
    psp_peak: float
    threshold: float
    kernel: int

    def input_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f_1, f_2 of each sorted input time x (0 where x is +inf)."""
        ...

    def crosses(
        self, a: torch.Tensor, b: torch.Tensor, start: torch.Tensor, end: torch.Tensor
    ) -> torch.Tensor:
        """Whether the membrane of causal set (a, b) reaches threshold within [start, end]."""
        ...

    def crossing(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(spike time x, slope du/dx at it) of the first crossing of causal set (a, b)."""
        ...

    def psp(self, delay: torch.Tensor) -> torch.Tensor:
        """dF/dw_i as a function of D = x_out - x_i >= 0."""
        ...

    def psp_and_drive(self, delay: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """psp(D) and the drive -dF/dx_i / w_i as functions of D = x_out - x_i >= 0."""
        ...


class Crossings(NamedTuple):
    """Result of the forward scan, flat over pairs p = b * n_outputs + j."""

    times: torch.Tensor
    slope: torch.Tensor
    last_causal: torch.Tensor
    sorted_x: torch.Tensor
    order: torch.Tensor


def sort_rows(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row ascending; (sorted values, indices).

    On the CPU NumPy's sort is used: for rows of a hundred or more elements it is several times
    faster than torch.sort there (measured with torch 2.14 on 2 cores).
    """
    if values.device.type != "cpu":
        return torch.sort(values, dim=1)
    order = torch.from_numpy(np.argsort(values.numpy(), axis=1))
    return torch.gather(values, 1, order), order


def _chunks(n: int) -> Iterator[tuple[int, int]]:
    start, size = 0, FIRST_CHUNK
    while start < n:
        stop = min(n, start + size)
        yield start, stop
        start, size = stop, size * 2


def scan_crossings(input_times: torch.Tensor, weights: torch.Tensor, rule: SpikeRule) -> Crossings:
    """First threshold crossing of every (sample, output) pair; see the module docstring."""
    n_batch = input_times.shape[0]
    n_out = weights.shape[1]
    x, order = sort_rows(input_times.detach() / rule.unit)
    n_spiking = max(1, int(torch.isfinite(x).sum(dim=1).max()))
    scanned = x[:, :n_spiking]
    term_1, term_2 = rule.input_terms(scanned)
    x_next = torch.cat([scanned[:, 1:], torch.full_like(scanned[:, :1], math.inf)], dim=1)
    inputs = (scanned, x_next, term_1, term_2, order[:, :n_spiking])
    weights = weights.detach()

    n_pairs = n_batch * n_out
    found_a = torch.zeros(n_pairs, dtype=x.dtype, device=x.device)
    found_b = torch.zeros_like(found_a)
    last_causal = torch.full((n_pairs,), -1, dtype=torch.long, device=x.device)

    if use_kernels(x.device):
        arrays = [v.contiguous().numpy() for v in (*inputs, weights)]
        found = [v.numpy() for v in (found_a, found_b, last_causal)]

        def scan(blocks: list[slice]) -> None:
            kernels.scan_rows(rule.kernel, rule.threshold, *arrays, _rows(blocks), *found)

        blocks = _sample_blocks(n_batch)
    else:
        weights_t = weights.t().contiguous()

        def scan(blocks: list[slice]) -> None:
            for block in blocks:
                _scan_block(
                    block, inputs, (weights, weights_t), rule, (found_a, found_b, last_causal)
                )

        blocks = _blocks(n_batch, n_out, x.device)
    _run_groups(scan, _thread_groups(blocks, n_pairs * n_spiking, x.device), x.device)

    spiking = last_causal >= 0
    times = torch.full_like(found_a, math.inf)
    slope = torch.ones_like(found_a)
    if spiking.any():
        t, s = rule.crossing(found_a[spiking], found_b[spiking])
        times[spiking], slope[spiking] = t, s
    return Crossings(times, slope, last_causal, x, order)


def _scan_block(
    block: slice,
    inputs: tuple[torch.Tensor, ...],
    weights: tuple[torch.Tensor, torch.Tensor],
    rule: SpikeRule,
    found: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    """Scan the pairs of the samples in ``block``, writing (a, b, last causal index) of each
    crossing into found.

    While DENSE_FRACTION or more of the block's pairs are still scanning, chunks are computed for
    every pair of the block, laid out (sample, input, output) with whole weight rows gathered; then
    the scan goes on over the list of pairs left (see :data:`DENSE_FRACTION`).
    """
    x, x_next, term_1, term_2, order = (v[block] for v in inputs)
    weights, weights_t = weights
    n_rows, n_in = x.shape
    n_out = weights.shape[1]
    offset = block.start * n_out
    scanning = torch.ones(n_rows, n_out, dtype=torch.bool, device=x.device)
    carry_a = torch.zeros(n_rows, n_out, dtype=x.dtype, device=x.device)
    carry_b = torch.zeros_like(carry_a)
    chunks = _chunks(n_in)
    for start, stop in chunks:
        index = order[:, start:stop]
        w = weights.index_select(0, index.reshape(-1)).view(*index.shape, n_out)
        a = carry_a.unsqueeze(1) + torch.cumsum(w * term_1[:, start:stop, None], dim=1)
        b = carry_b.unsqueeze(1) + torch.cumsum(w * term_2[:, start:stop, None], dim=1)
        hits = rule.crosses(a, b, x[:, start:stop, None], x_next[:, start:stop, None])
        hit, first = torch.max(hits.to(torch.uint8), dim=1, keepdim=True)
        new = hit.squeeze(1).bool() & scanning
        done = offset + new.flatten().nonzero().squeeze(1)
        _record(found, done, new, (a, b, first), start)
        if stop == n_in:
            return
        scanning &= ~new & torch.isfinite(x[:, stop]).unsqueeze(1)
        carry_a, carry_b = a[:, -1], b[:, -1]
        if scanning.sum() < DENSE_FRACTION * scanning.numel():
            break
    local = scanning.flatten().nonzero().squeeze(1)
    pairs, carry_a, carry_b = offset + local, carry_a.flatten()[local], carry_b.flatten()[local]
    packed = torch.stack([x, x_next, term_1, term_2])
    for start, stop in chunks:
        if pairs.numel() == 0:
            return
        rows, cols = local // n_out, local % n_out
        index = order[:, start:stop].index_select(0, rows)
        w = _take(weights_t, (cols * weights.shape[0]).unsqueeze(1) + index)
        x_0, x_1, f_1, f_2 = packed[:, :, start:stop].index_select(1, rows)
        a = carry_a.unsqueeze(1) + torch.cumsum(w * f_1, dim=1)
        b = carry_b.unsqueeze(1) + torch.cumsum(w * f_2, dim=1)
        hits = rule.crosses(a, b, x_0, x_1)
        hit, first = torch.max(hits.to(torch.uint8), dim=1, keepdim=True)
        hit = hit.squeeze(1).bool()
        _record(found, pairs[hit], hit, (a, b, first), start)
        if stop == n_in:
            return
        keep = ~hit & torch.isfinite(x[rows, stop])
        local, pairs, carry_a, carry_b = local[keep], pairs[keep], a[keep, -1], b[keep, -1]


def _record(
    found: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    done: torch.Tensor,
    hit: torch.Tensor,
    chunk: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    start: int,
) -> None:
    """Write (a, b, last causal index) at the first hit of a chunk (cumulative sums a, b, first
    hit ``first`` along dim 1) for the entries ``hit``, i.e. the flat pairs ``done``."""
    found_a, found_b, last_causal = found
    a, b, first = chunk
    found_a[done] = torch.gather(a, 1, first).squeeze(1)[hit]
    found_b[done] = torch.gather(b, 1, first).squeeze(1)[hit]
    last_causal[done] = start + first.squeeze(1)[hit]


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """torch.take(values, index), by index_select on the flat values (faster on the CPU)."""
    return values.reshape(-1).index_select(0, index.reshape(-1)).view(index.shape)


def largest_psp(crossings: Crossings, rule: SpikeRule) -> torch.Tensor:
    """max_i psp(x_out - x_i) over each pair's causal inputs (flat pairs; 0 if none).

    psp is unimodal with its peak at D = ``rule.psp_peak``, and the causal D_i decrease along
    the sorted inputs, so the maximum sits at one of the two inputs around x_out - psp_peak.
    """
    x = crossings.sorted_x
    n_batch, n_in = x.shape
    out = crossings.times.view(n_batch, -1)
    above = torch.searchsorted(x, (out - rule.psp_peak).contiguous())
    best = torch.zeros_like(out)
    for candidate in (above - 1, above):
        index = candidate.clamp(0, n_in - 1)
        delay = out - torch.gather(x, 1, index)
        causal = (
            (candidate >= 0)
            & (candidate <= crossings.last_causal.view(n_batch, -1))
            & (delay > 0)
            & torch.isfinite(delay)
        )
        safe = torch.where(causal, delay, torch.ones_like(delay))
        best = torch.maximum(best, torch.where(causal, rule.psp(safe), 0.0))
    return best.reshape(-1)


def scan_gradients(
    grad_times: torch.Tensor,
    weights: torch.Tensor,
    crossings: Crossings,
    rule: SpikeRule,
    max_dw_norm: float | None,
    need_input_grad: bool,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(dL/dx_in in input order or None, dL/dW) for dL/dx_out = ``grad_times`` (flat pairs).

    ``max_dw_norm``: a pair whose largest |dL/dw_ij| exceeds it contributes no weight gradient;
    its gradient to the inputs is kept (as published).
    """
    x, order = crossings.sorted_x, crossings.order
    n_batch, n_in = x.shape
    n_out = weights.shape[1]
    grad = torch.nan_to_num(grad_times, nan=0.0) / crossings.slope
    grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
    grad = torch.where(crossings.last_causal >= 0, grad, 0.0)
    grad_for_weights = grad
    if max_dw_norm is not None:
        too_large = largest_psp(crossings, rule) * grad.abs() > max_dw_norm
        grad_for_weights = torch.where(too_large, 0.0, grad)
    grad_x = torch.zeros_like(x) if need_input_grad else None
    per_pair = (grad, grad_for_weights, crossings.times, crossings.last_causal)
    per_pair = tuple(v.view(n_batch, n_out) for v in per_pair)

    if use_kernels(x.device):
        arrays = [v.contiguous().numpy() for v in (*per_pair, x, order, weights.detach())]
        grad_x_array = np.empty((0, 0)) if grad_x is None else grad_x.numpy()

        def accumulate(blocks: list[slice]) -> torch.Tensor:
            grad_w = torch.zeros(n_in, n_out, dtype=x.dtype)
            rows = _rows(blocks)
            out = (grad_w.numpy(), grad_x_array, grad_x is not None)
            kernels.accumulate_rows(rule.kernel, rows, *arrays, *out)
            return grad_w

        blocks = _sample_blocks(n_batch)
    else:

        def accumulate(blocks: list[slice]) -> torch.Tensor:
            grad_w = torch.zeros(n_in, n_out, dtype=x.dtype, device=x.device)
            with _deterministic_on(x.device):
                for block in blocks:
                    _accumulate_block(
                        tuple(v[block] for v in per_pair),
                        (x[block], order[block]),
                        weights,
                        rule,
                        (grad_w, None if grad_x is None else grad_x[block]),
                    )
            return grad_w

        blocks = _blocks(n_batch, n_out, x.device)
    groups = _gradient_groups(blocks, n_batch * n_out * n_in, x.device)
    grad_w = sum_in_order(_run_groups(accumulate, groups, x.device))
    grad_inputs = None
    if grad_x is not None:
        grad_inputs = torch.zeros_like(x).scatter_(1, order, grad_x)
    return grad_inputs, grad_w


@contextlib.contextmanager
def _deterministic_on(device: torch.device) -> Iterator[None]:
    """PyTorch's deterministic mode on a CUDA device while the block runs, the caller's after.

    ``index_add_`` on CUDA adds with atomics, in an order that changes from run to run, so the
    weight gradients (and all weights after them) would differ in their last bits between two
    runs of the same config. In deterministic mode it sorts the indices and adds in their order.
    """
    if device.type != "cuda" or torch.are_deterministic_algorithms_enabled():
        yield
        return
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(False, warn_only=warn_only)


def _accumulate_block(
    per_pair: tuple[torch.Tensor, ...],
    inputs: tuple[torch.Tensor, torch.Tensor],
    weights: torch.Tensor,
    rule: SpikeRule,
    out: tuple[torch.Tensor, torch.Tensor | None],
) -> None:
    """Add the causal inputs' terms of the pairs of one block of samples to grad_w (and to
    grad_x, the block's rows in sorted input order). Chunks are computed for all pairs of the
    block while :data:`DENSE_FRACTION` of them have causal inputs left, pair by pair after."""
    grad, grad_for_weights, out_times, last_causal = per_pair
    x, order = inputs
    grad_w, grad_x = out
    n_in = x.shape[1]
    n_out = weights.shape[1]
    active = (last_causal >= 0) & (grad != 0)
    chunks = _chunks(n_in)
    for start, stop in chunks:
        active &= last_causal >= start
        if not active.any():
            return
        positions = torch.arange(start, stop, device=x.device).view(1, -1, 1)
        delay = (out_times.unsqueeze(1) - x[:, start:stop, None]).clamp_(min=0.0)
        causal = (positions <= last_causal.unsqueeze(1)) & (delay > 0)
        psp, drive = rule.psp_and_drive(delay)
        index = order[:, start:stop].reshape(-1)
        contribution = torch.where(causal, psp, 0.0) * -grad_for_weights.unsqueeze(1)
        grad_w.index_add_(0, index, contribution.view(-1, n_out))
        if grad_x is not None:
            w = weights.index_select(0, index).view(delay.shape)
            drive = torch.where(causal, drive, 0.0) * w * grad.unsqueeze(1)
            grad_x[:, start:stop] += drive.sum(dim=2)
        left = active & (last_causal >= stop)
        if stop < n_in and left.sum() < DENSE_FRACTION * active.numel():
            break
    local = left.flatten().nonzero().squeeze(1)
    grad, grad_for_weights, out_times, last_causal = (
        v.flatten()[local] for v in (grad, grad_for_weights, out_times, last_causal)
    )
    flat_grad_w = grad_w.view(-1)
    for start, stop in chunks:
        keep = last_causal >= start
        local, grad, grad_for_weights, out_times, last_causal = (
            v[keep] for v in (local, grad, grad_for_weights, out_times, last_causal)
        )
        if local.numel() == 0:
            return
        rows, cols = local // n_out, local % n_out
        positions = torch.arange(start, stop, device=x.device)
        delay = (out_times.unsqueeze(1) - x[:, start:stop].index_select(0, rows)).clamp_(min=0.0)
        causal = (positions <= last_causal.unsqueeze(1)) & (delay > 0)
        psp, drive = rule.psp_and_drive(delay)
        synapses = order[:, start:stop].index_select(0, rows) * n_out + cols.unsqueeze(1)
        contribution = torch.where(causal, psp, 0.0) * -grad_for_weights.unsqueeze(1)
        flat_grad_w.index_add_(0, synapses.flatten(), contribution.flatten())
        if grad_x is not None:
            drive = torch.where(causal, drive, 0.0) * _take(weights, synapses)
            grad_x[:, start:stop] += torch.zeros_like(grad_x[:, start:stop]).index_add_(
                0, rows, drive * grad.unsqueeze(1)
            )


def spike_times(input_times: torch.Tensor, weights: torch.Tensor, rule: SpikeRule) -> torch.Tensor:
    """(batch, n_outputs) first-spike times (+inf: none) of a layer; no autograd."""
    crossings = scan_crossings(input_times, weights, rule)
    return rule.unit * crossings.times.view(input_times.shape[0], weights.shape[1])


class _ExactFirstSpikes(torch.autograd.Function):
    """Autograd glue: exact forward scan, implicit-function-theorem backward scan."""

    @staticmethod
    def forward(ctx, input_times, weights, rule, max_dw_norm):  # noqa: D102
        crossings = scan_crossings(input_times, weights, rule)
        ctx.rule = rule
        ctx.max_dw_norm = max_dw_norm
        ctx.crossings = crossings
        ctx.save_for_backward(weights)
        return rule.unit * crossings.times.view(input_times.shape[0], weights.shape[1])

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        (weights,) = ctx.saved_tensors
        rule = ctx.rule
        grad_inputs, grad_weights = scan_gradients(
            grad_out.reshape(-1) * rule.unit,
            weights,
            ctx.crossings,
            rule,
            ctx.max_dw_norm,
            need_input_grad=ctx.needs_input_grad[0],
        )
        if grad_inputs is not None:
            grad_inputs = grad_inputs / rule.unit
        return grad_inputs, grad_weights, None, None


def exact_first_spikes(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    rule: SpikeRule,
    max_dw_norm: float | None = None,
) -> torch.Tensor:
    """Differentiable first-spike times of a layer under ``rule``; gradients flow to
    ``weights`` and ``input_times``."""
    return _ExactFirstSpikes.apply(input_times, weights, rule, max_dw_norm)
