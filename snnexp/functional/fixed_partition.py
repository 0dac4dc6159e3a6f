"""Products with trained weights computed in parts fixed by the shapes: bitwise the same result
with any number of CPU threads.

torch's CPU kernels share a sum among their threads as they see fit (oneDNN's convolution weight
gradient, MKL's GEMMs with a long inner dimension, ``torch.sum`` over many rows), so the last
bits of a time-stepped network's gradients depend on the thread count. The functions here
compute

    linear:   Y = X W,             dL/dX = G W^T,       dL/dW = sum_p X_p^T G_p
    expand_bias: Y = 1 b^T,                             dL/db = sum_p 1^T G_p
    conv2d:   Y = conv(X, W) + b,  dL/dX per sample,    dL/dW = sum_p dW_p,  dL/db = sum_p db_p

with the rows (samples) split into the parts p of :func:`row_parts`, a partition that depends
on the number of rows only. Each part runs single-threaded (in parallel with the others,
:func:`snnexp.functional.threads.map_single_threaded`), and the parts' weight gradients are
added in order. The values equal the plain operations' up to rounding. On a GPU the plain
operations run: the thread count is a matter of the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from snnexp.functional.threads import map_single_threaded, sum_in_order

MAX_PARTS = 16
"""The most parts a product is split into (the most threads that share it)."""
MIN_ROWS_PER_PART = 32
"""Fewer rows than twice this stay one part."""


def row_parts(rows: int) -> list[slice]:
    """min(MAX_PARTS, rows // MIN_ROWS_PER_PART) (at least one) consecutive parts of ``rows``,
    their sizes differing by at most one."""
    parts = max(1, min(MAX_PARTS, rows // MIN_ROWS_PER_PART))
    bounds = [rows * k // parts for k in range(parts + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(parts)]


def _by_part(work: Any, rows: int, device: torch.device) -> list[Any]:
    return map_single_threaded(work, row_parts(rows), device)


def _joined(parts: list[torch.Tensor]) -> torch.Tensor:
    """The parts' rows in order (a single part as it is, without a copy)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        rows = x.reshape(-1, x.shape[-1])
        parts = _by_part(lambda p: rows[p] @ weight, len(rows), x.device)
        return _joined(parts).view(*x.shape[:-1], weight.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        rows = x.reshape(-1, x.shape[-1])
        grad_rows = grad.reshape(-1, grad.shape[-1])
        want_x, want_w = ctx.needs_input_grad

        def part(p: slice) -> tuple[torch.Tensor | None, torch.Tensor | None]:
            g = grad_rows[p]
            return (g @ weight.t() if want_x else None, rows[p].t() @ g if want_w else None)

        results = _by_part(part, len(rows), x.device)
        grad_x = _joined([r[0] for r in results]).view(x.shape) if want_x else None
        grad_w = sum_in_order([r[1] for r in results]) if want_w else None
        return grad_x, grad_w


class _ExpandBias(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, bias: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        return bias.expand(shape)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        rows = grad.reshape(-1, grad.shape[-1])
        sums = _by_part(lambda p: rows[p].sum(0), len(rows), grad.device)
        return sum_in_order(sums), None


class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        conv: tuple[int, int, int],
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.conv, ctx.has_bias = conv, bias is not None
        stride, padding, groups = conv
        parts = _by_part(
            lambda p: F.conv2d(x[p], weight, bias, stride, padding, 1, groups), len(x), x.device
        )
        return _joined(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride, padding, groups = ctx.conv
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias]
        bias_sizes = [weight.shape[0]] if ctx.has_bias else None

        def part(p: slice) -> tuple[torch.Tensor | None, ...]:
            return torch.ops.aten.convolution_backward(
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

        results = _by_part(part, len(x), x.device)
        grad_x = _joined([r[0] for r in results]) if mask[0] else None
        grad_w = sum_in_order([r[1] for r in results]) if mask[1] else None
        grad_b = sum_in_order([r[2] for r in results]) if mask[2] else None
        return grad_x, grad_w, grad_b, None


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight`` for ``x`` ``(..., in)`` and ``weight`` ``(in, out)``, in fixed parts of
    the rows on the CPU."""
    if x.device.type != "cpu":
        return x @ weight
    return _Linear.apply(x, weight)


def expand_bias(bias: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """``bias`` ``(features,)`` expanded to ``shape`` ``(..., features)``, its gradient summed
    over the leading entries in fixed parts on the CPU."""
    if bias.device.type != "cpu":
        return bias.expand(*shape)
    return _ExpandBias.apply(bias, tuple(shape))


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, 1, groups)`` in fixed parts of the samples
    on the CPU."""
    if x.device.type != "cpu":
        return F.conv2d(x, weight, bias, stride, padding, 1, groups)
    return _Conv2d.apply(x, weight, bias, (stride, padding, groups))
