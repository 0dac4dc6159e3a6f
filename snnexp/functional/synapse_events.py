r"""Event-driven products of spikes with delayed synapses, into and out of a buffer of steps.

A buffer ``(batch, span, n)`` holds one value per sample, step and postsynaptic neuron,
flattened. Synapse ij of presynaptic neuron i lands at offset ``offsets[i, j] = d_ij n + j``
(:func:`synapse_offsets`) from an event's base ``b span n + t n`` (sample b, arrival step t):

    deliver   buffer[base_e + offsets[i_e, j]] += a_e W[i_e, j]          (spikes -> currents)
    collect   grad[i_e, j] += a_e buffer[base_e + offsets[i_e, j]]       (errors -> weight grads)

Only the rows of presynaptic neurons that spiked are touched: the cost is events x n, not
batch x n_pre x n. Both are torch index operations (the torch-op path of
:mod:`snnexp.functional.lsnn`, for devices other than the CPU, whose layer has compiled loops).
"""

from __future__ import annotations

import torch


def synapse_offsets(delays: torch.Tensor) -> torch.Tensor:
    """d_ij n + j for every synapse ``(n_pre, n)`` (module docstring)."""
    n = delays.shape[1]
    return delays * n + torch.arange(n, device=delays.device)


def delay_expanded(weight: torch.Tensor, delays: torch.Tensor, n_delays: int) -> torch.Tensor:
    """``(n_pre, n_delays n)``: row i holds W_ij at column d_ij n + j and 0 elsewhere, so that
    one presynaptic spike adds its row to the next n_delays steps of a buffer at once."""
    n_pre, n = weight.shape
    expanded = weight.new_zeros((n_pre, n_delays * n))
    return expanded.scatter_(1, synapse_offsets(delays), weight)


def event_bases(
    buffer: torch.Tensor, step: torch.Tensor | int, sample: torch.Tensor
) -> torch.Tensor:
    """b span n + t n: the flat position of step t of sample b in a buffer
    ``(batch, span, n)``."""
    _, span, n = buffer.shape
    return sample * (span * n) + step * n


def deliver(
    buffer: torch.Tensor,
    bases: torch.Tensor,
    rows: torch.Tensor,
    amplitudes: torch.Tensor,
    offsets: torch.Tensor,
    weight: torch.Tensor,
) -> None:
    """buffer[base_e + offsets[i_e, j]] += a_e W[i_e, j] for every event e (``rows`` holds
    i_e) and postsynaptic j."""
    index = bases.unsqueeze(1) + offsets[rows]
    values = weight.detach()[rows] * amplitudes.to(buffer.dtype).unsqueeze(1)
    buffer.view(-1).index_add_(0, index.view(-1), values.view(-1))


def collect(
    grad: torch.Tensor,
    buffer: torch.Tensor,
    bases: torch.Tensor,
    rows: torch.Tensor,
    amplitudes: torch.Tensor,
    offsets: torch.Tensor,
) -> None:
    """grad[i_e, j] += a_e buffer[base_e + offsets[i_e, j]] for every event e and
    postsynaptic j."""
    gathered = buffer.view(-1)[bases.unsqueeze(1) + offsets[rows]]
    grad.index_add_(0, rows, gathered * amplitudes.to(buffer.dtype).unsqueeze(1))
