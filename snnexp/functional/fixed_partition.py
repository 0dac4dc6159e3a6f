"""Products with trained weights in parts fixed by the shapes, for runs that must give bitwise
the same result with any number of CPU threads.

Such runs compute inside :func:`snnexp.functional.threads.torch_single_threaded`: every torch
kernel runs on one thread, so no result depends on the thread count (torch's kernels share a
sum among their threads as they see fit: oneDNN's convolution weight gradient, MKL's GEMMs with
a long inner dimension, ``torch.sum`` over many rows). To keep the other threads busy, the large
products are split into parts that depend on the shapes only, computed side by side
(:func:`snnexp.functional.threads.map_single_threaded`), each single-threaded:

    linear, Y = X W:   Y_p = X_p W,  dL/dX_p = G_p W^T      (p: parts of the rows of X)
                       dL/dW = sum_r X_r^T G_r              (r: parts of the rows, fewer)
    conv2d:            Y_p = conv(X_p, W) + b,  dL/dX_p,    (p: parts of the samples)
                       dL/dW = sum_p dW_p,  dL/db = sum_p db_p   (added in the parts' order)

A product has one part per MIN_MACS_PER_PART multiply-adds, at most MAX_PARTS; a product of one
part is torch's own operation. A weight gradient has one partial sum per MIN_ROWS_PER_PARTIAL
rows, at most as many as the product has parts; the partials are added in their order. Both
counts are rounded down to a power of two, so that 1, 2, 4, 8 or 16 threads share them evenly
(three partials on two threads took twice as long as two). The
values equal the plain operations' up to rounding. On a GPU the plain operations run: the
thread count is a matter of the CPU.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from snnexp.functional.threads import map_single_threaded, sum_in_order

MAX_PARTS = 16
"""The most parts a product is split into (the most threads that share it)."""
MIN_MACS_PER_PART = 2**22
"""The multiply-adds of a part at least: smaller parts cost more to hand out than they gain."""
MIN_ROWS_PER_PARTIAL = 512
"""The rows (samples x steps) that a partial sum of a weight gradient covers at least: each
partial is a whole weight-sized matrix to write and add, which pays off over many rows only."""


def part_count(macs: int, *limits: int) -> int:
    """The parts of a product of ``macs`` multiply-adds: macs // MIN_MACS_PER_PART, at most
    MAX_PARTS and each of ``limits`` (the lengths of the dimensions it splits), at least one,
    rounded down to a power of two."""
    return power_of_two_below(min(MAX_PARTS, macs // MIN_MACS_PER_PART, *limits))


def power_of_two_below(count: int) -> int:
    """The largest power of two <= ``count``; 1 for counts below 2."""
    return 1 << (max(1, count).bit_length() - 1)


def even_parts(length: int, parts: int) -> list[slice]:
    """``parts`` consecutive slices of ``range(length)``, their sizes differing by at most one."""
    bounds = [length * k // parts for k in range(parts + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(parts)]


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, parts: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.parts = parts
        rows = x.reshape(-1, x.shape[-1])
        y = rows.new_empty((len(rows), weight.shape[1]))
        map_single_threaded(
            lambda p: torch.mm(rows[p], weight, out=y[p]), even_parts(len(rows), parts), x.device
        )
        return y.view(*x.shape[:-1], weight.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        rows = x.reshape(-1, x.shape[-1])
        grad_rows = grad.reshape(-1, grad.shape[-1])
        want_x, want_w = ctx.needs_input_grad[:2]
        grad_x = rows.new_empty(rows.shape) if want_x else None
        work: list[tuple[bool, slice]] = []
        if want_x:
            work += [(True, p) for p in even_parts(len(rows), ctx.parts)]
        if want_w:
            partials = power_of_two_below(min(ctx.parts, len(rows) // MIN_ROWS_PER_PARTIAL))
            work += [(False, p) for p in even_parts(len(rows), partials)]

        def part(item: tuple[bool, slice]) -> torch.Tensor | None:
            of_input, p = item
            if of_input:
                torch.mm(grad_rows[p], weight.t(), out=grad_x[p])
                return None
            return rows[p].t() @ grad_rows[p]

        results = map_single_threaded(part, work, x.device)
        grad_w = sum_in_order([r for r in results if r is not None]) if want_w else None
        return (grad_x.view(x.shape) if want_x else None), grad_w, None


class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        conv: tuple[int, int, int],
        parts: int,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.conv, ctx.has_bias, ctx.parts = conv, bias is not None, parts
        stride, padding, groups = conv
        y = x.new_empty(conv_shape(x, weight, stride, padding))

        def part(p: slice) -> None:
            y[p] = F.conv2d(x[p], weight, bias, stride, padding, 1, groups)

        map_single_threaded(part, even_parts(len(x), parts), x.device)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride, padding, groups = ctx.conv
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias]
        bias_sizes = [weight.shape[0]] if ctx.has_bias else None
        grad_x = torch.empty_like(x) if mask[0] else None

        def part(p: slice) -> tuple[torch.Tensor | None, torch.Tensor | None]:
            part_x, part_w, part_b = torch.ops.aten.convolution_backward(
                grad[p],
                x[p],
                weight,
                bias_sizes,
                [stride] * 2,
                [padding] * 2,
                [1, 1],
                False,
                [0, 0],
                groups,
                mask,
            )
            if grad_x is not None:
                grad_x[p] = part_x
            return part_w, part_b

        results = map_single_threaded(part, even_parts(len(x), ctx.parts), x.device)
        grad_w = sum_in_order([r[0] for r in results]) if mask[1] else None
        grad_b = sum_in_order([r[1] for r in results]) if mask[2] else None
        return grad_x, grad_w, grad_b, None, None


def conv_shape(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int) -> tuple[int, ...]:
    """The output shape of the convolution of ``x`` ``(n, C, H, W)`` with ``weight``."""
    sizes = (
        (size + 2 * padding - kernel) // stride + 1
        for size, kernel in zip(x.shape[2:], weight.shape[2:], strict=True)
    )
    return (len(x), len(weight), *sizes)


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight`` for ``x`` ``(..., in)`` and ``weight`` ``(in, out)``, in fixed parts on
    the CPU."""
    n_in, n_out = weight.shape
    rows = x.numel() // n_in
    parts = part_count(rows * n_in * n_out, rows, n_in)
    if x.device.type != "cpu" or parts == 1:
        return x @ weight
    return _Linear.apply(x, weight, parts)


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, 1, groups)`` in fixed parts of the samples
    on the CPU (returned in the contiguous layout)."""
    shape = conv_shape(x, weight, stride, padding)
    parts = part_count(math.prod(shape) * weight[0].numel(), len(x))
    if x.device.type != "cpu" or parts == 1:
        return F.conv2d(x, weight, bias, stride, padding, 1, groups)
    return _Conv2d.apply(x, weight, bias, (stride, padding, groups), parts)


class _Pool2d(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, maximum: bool, kernel: int, stride: int, parts: int
    ) -> torch.Tensor:
        samples = even_parts(len(x), parts)

        def part(p: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
            if maximum:
                return torch.ops.aten.max_pool2d_with_indices(x[p], [kernel], [stride])
            return F.avg_pool2d(x[p], kernel, stride), None

        results = map_single_threaded(part, samples, x.device)
        ctx.save_for_backward(x, *(indices for _, indices in results if indices is not None))
        ctx.pooling = maximum, kernel, stride, samples
        return torch.cat([pooled for pooled, _ in results])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, *indices = ctx.saved_tensors
        maximum, kernel, stride, samples = ctx.pooling
        grad_x = torch.empty_like(x)

        def part(k: int) -> None:
            p = samples[k]
            if maximum:
                grad_x[p] = torch.ops.aten.max_pool2d_with_indices_backward(
                    grad[p], x[p], [kernel], [stride], [0], [1], False, indices[k]
                )
            else:
                grad_x[p] = torch.ops.aten.avg_pool2d_backward(
                    grad[p], x[p], [kernel], [stride], [0], False, True, None
                )

        map_single_threaded(part, range(len(samples)), x.device)
        return grad_x, None, None, None, None


def pool2d(x: torch.Tensor, maximum: bool, kernel: int, stride: int) -> torch.Tensor:
    """``F.max_pool2d`` (``maximum``) or ``F.avg_pool2d`` of ``x`` ``(n, C, H, W)`` with
    ``kernel`` and ``stride``, on parts of the samples side by side on the CPU (one part per
    MIN_MACS_PER_PART inputs; each sample is pooled on its own, so the values are torch's)."""
    parts = part_count(x.numel(), len(x))
    if x.device.type != "cpu" or parts == 1:
        pool = F.max_pool2d if maximum else F.avg_pool2d
        return pool(x, kernel, stride)
    return _Pool2d.apply(x, maximum, kernel, stride, parts)
