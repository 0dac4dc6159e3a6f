r"""The fused LSNN layer of :mod:`snnexp.functional.lsnn` as compiled CPU loops (Numba).

Forward, one sample per thread: each sample keeps the input currents of all steps
``(steps + D, n)``; every input spike and every spike of the previous step adds its weights' row
at the synapses' delays (only presynaptic neurons that spiked are touched), then the neurons
update elementwise. For training, the forward pass may give only what a read-out and a rate
regulariser need of the spikes z_t, sum_t c_t z_t and sum_t z_t, and keep the spikes of every
step as bytes for the backward pass (:class:`ForwardState`). Backward, the error
e_t = dL/dI_t of all steps of a sample is kept ``(steps + D + 1, n)``; the recurrent term of
dL/dz_t,

    sum_ij R_ij e_{t + 1 + d_ij, j} = <R^D_i, [e_{t+1}, .., e_{t+D}]>

(R^D: the weights laid out by delay, :func:`snnexp.functional.synapse_events.delay_expanded`),
is computed only for the neurons whose pseudo-derivative is non-zero at step t (for all others
dL/du_t = 0 whatever dL/dz_t is). The weight gradients add the error window
[e_{t+lag}, .., e_{t+lag+D-1}] at every spike of presynaptic neuron i to row i of a
delay-laid-out gradient. The samples are cut into a fixed number of chunks, one per thread at a
time, each with its own gradient sums, added up in chunk order: the result does not depend on
the number of threads.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from numba import njit, prange

from snnexp.functional.synapse_events import delay_expanded, synapse_offsets
from snnexp.functional.threads import use_numba_threads

CHUNKS = 16


class Coefficients(NamedTuple):
    """The constants of the layer in the dtype of its tensors (the loops compute in it)."""

    alpha: np.floating
    one_minus_alpha: np.floating
    rho: np.floating
    one_minus_rho: np.floating
    threshold: np.floating
    dampening: np.floating


def coefficients(
    alpha: float, rho: float, threshold: float, dampening: float, dtype: torch.dtype
) -> Coefficients:
    """The layer's constants as numpy scalars of ``dtype``, rounded as torch rounds a Python
    float against a tensor of that dtype."""
    cast = torch.empty(0, dtype=dtype).numpy().dtype.type
    return Coefficients(
        cast(alpha), cast(1.0 - alpha), cast(rho), cast(1.0 - rho), cast(threshold),
        cast(dampening),
    )  # fmt: skip


@njit(parallel=True, cache=True, nogil=True)
def _forward(  # noqa: PLR0913, PLR0915
    x: np.ndarray,
    weight: np.ndarray,
    input_offsets: np.ndarray,
    recurrent_weight: np.ndarray,
    recurrent_offsets: np.ndarray,
    k: tuple,
    beta: np.ndarray,
    refractory_steps: int,
    span: int,
    window: np.ndarray,
    spikes: np.ndarray,
    filtered: np.ndarray,
    counts: np.ndarray,
    bits: np.ndarray,
    previous: np.ndarray,
    threshold: np.ndarray,
    derivative: np.ndarray,
    membrane: np.ndarray,
) -> None:
    alpha, one_minus_alpha, rho, one_minus_rho, theta, gamma = k
    steps, batch, n_in = x.shape
    n = beta.shape[0]
    reduce = window.shape[0] > 0
    full = spikes.shape[0] > 0
    keep = derivative.shape[0] > 0
    record = membrane.shape[0] > 0
    first_previous = n - previous.shape[2]
    first_threshold = n - threshold.shape[2]
    zero = alpha - alpha
    one = alpha / alpha
    for s in prange(batch):
        currents = np.zeros((steps + 1) * n + span, dtype=weight.dtype)
        v = np.zeros(n, dtype=weight.dtype)
        b = np.zeros(n, dtype=weight.dtype)
        z = np.zeros(n, dtype=weight.dtype)
        refractory = np.zeros(n, dtype=np.int64)
        for t in range(steps):
            base = t * n
            for i in range(n_in):
                amplitude = x[t, s, i]
                if amplitude != zero:
                    for j in range(n):
                        currents[base + input_offsets[i, j]] += amplitude * weight[i, j]
            for i in range(n):
                if z[i] != zero:
                    for j in range(n):
                        currents[base + recurrent_offsets[i, j]] += recurrent_weight[i, j]
            for j in range(n):
                b[j] = rho * b[j] + one_minus_rho * z[j]
                a = theta + beta[j] * b[j]
                u = (v[j] - a) / a
                if j >= first_previous:
                    previous[t, s, j - first_previous] = v[j]
                if j >= first_threshold:
                    threshold[t, s, j - first_threshold] = a
                v[j] = alpha * v[j] + one_minus_alpha * currents[base + j] - a * z[j]
                allowed = True
                if refractory_steps > 0:
                    if z[j] != zero:
                        refractory[j] = refractory_steps
                    elif refractory[j] > 0:
                        refractory[j] -= 1
                    allowed = refractory[j] == 0
                fired = u > zero and allowed
                z[j] = one if fired else zero
                if full:
                    spikes[t, s, j] = z[j]
                if keep:
                    bits[t, s, j] = fired
                if reduce and fired:
                    filtered[s, j] += window[t]
                    counts[s, j] += one
                if keep:
                    slope = one - abs(u)
                    derivative[t, s, j] = gamma * slope if (slope > zero and allowed) else zero
                if record:
                    membrane[t, s, j] = v[j]


@njit(cache=True, nogil=True, fastmath=True)
def _dot(a: np.ndarray, b: np.ndarray) -> float:
    total = a[0] - a[0]
    for m in range(len(a)):
        total += a[m] * b[m]
    return total


@njit(parallel=True, cache=True, nogil=True)
def _backward(  # noqa: PLR0913, PLR0915
    grad_spikes: np.ndarray,
    window: np.ndarray,
    grad_filtered: np.ndarray,
    grad_counts: np.ndarray,
    x: np.ndarray,
    spikes: np.ndarray,
    previous: np.ndarray,
    threshold: np.ndarray,
    derivative: np.ndarray,
    recurrent_weight: np.ndarray,
    k: tuple,
    beta: np.ndarray,
    chunk_grads: np.ndarray,
    chunk_recurrent_grads: np.ndarray,
) -> None:
    alpha, one_minus_alpha, rho, one_minus_rho, theta, _ = k
    steps, batch, n = spikes.shape
    reduced = window.shape[0] > 0
    first_previous = n - previous.shape[2]
    first_threshold = n - threshold.shape[2]
    n_in = x.shape[2]
    span = recurrent_weight.shape[1]
    chunks = chunk_grads.shape[0]
    zero = alpha - alpha
    for c in prange(chunks):
        error = np.zeros((steps + 1) * n + span, dtype=derivative.dtype)
        grad = chunk_grads[c]
        grad_recurrent = chunk_recurrent_grads[c]
        dv_next = np.zeros(n, dtype=derivative.dtype)
        db_next = np.zeros(n, dtype=derivative.dtype)
        du_next = np.zeros(n, dtype=derivative.dtype)
        a_next = np.ones(n, dtype=derivative.dtype)
        for s in range(c * batch // chunks, (c + 1) * batch // chunks):
            dv_next[:] = zero
            db_next[:] = zero
            du_next[:] = zero
            a_next[:] = alpha / alpha
            for t in range(steps - 1, -1, -1):
                upcoming = error[(t + 1) * n : (t + 1) * n + span]
                for i in range(n):
                    du = zero
                    slope = derivative[t, s, i]
                    if slope != zero:
                        if reduced:
                            g = window[t] * grad_filtered[s, i] + grad_counts[s, i]
                        else:
                            g = grad_spikes[t, s, i]
                        dz = g + one_minus_rho * db_next[i]
                        dz = dz - a_next[i] * dv_next[i] + _dot(recurrent_weight[i], upcoming)
                        du = dz * slope
                    dv = alpha * dv_next[i] + du_next[i] / a_next[i]
                    a = threshold[t, s, i - first_threshold] if i >= first_threshold else theta
                    if i >= first_previous:
                        da = -du * previous[t, s, i - first_previous] / (a * a)
                        if t > 0:
                            if spikes[t - 1, s, i]:
                                da = da - dv
                        db_next[i] = rho * db_next[i] + beta[i] * da
                    error[t * n + i] = one_minus_alpha * dv
                    dv_next[i], du_next[i], a_next[i] = dv, du, a
            for t in range(steps):
                arrived = error[t * n : t * n + span]
                for i in range(n_in):
                    amplitude = x[t, s, i]
                    if amplitude != zero:
                        for m in range(span):
                            grad[i, m] += amplitude * arrived[m]
                if t + 1 < steps:
                    following = error[(t + 1) * n : (t + 1) * n + span]
                    for i in range(n):
                        if spikes[t, s, i]:
                            for m in range(span):
                                grad_recurrent[i, m] += following[m]


class ForwardState(NamedTuple):
    """What :func:`forward` gives, each empty where not asked for: the spikes ``(steps, batch,
    n)`` (float), or their reductions sum_t window_t z_t (``filtered``) and sum_t z_t
    (``counts``) ``(batch, n)``; for the backward pass the spikes as bytes, the pseudo-derivative,
    the previous membrane v_{t-1} and the threshold A_t (the last two only for the trailing
    neurons from the first adaptive one on: for the others A_t = thr, and v_{t-1} enters only
    through the adaptation); for figures the membrane v_t and the threshold of all neurons."""

    spikes: torch.Tensor
    filtered: torch.Tensor
    counts: torch.Tensor
    bits: torch.Tensor
    previous_membrane: torch.Tensor
    threshold: torch.Tensor
    derivative: torch.Tensor
    membrane: torch.Tensor


class SpikeGradient(NamedTuple):
    """The loss's gradient of the spikes: per step ``spikes`` ``(steps, batch, n)``, or, where
    ``window`` is not empty, through the reductions: g_t = window_t ``filtered`` + ``counts``
    ``(batch, n)``. The parts not used are empty."""

    spikes: torch.Tensor
    window: torch.Tensor
    filtered: torch.Tensor
    counts: torch.Tensor


def forward(  # noqa: PLR0913
    x: torch.Tensor,
    weight: torch.Tensor,
    recurrent_weight: torch.Tensor,
    delays: torch.Tensor,
    recurrent_delays: torch.Tensor,
    k: Coefficients,
    beta: torch.Tensor,
    refractory_steps: int,
    n_delays: int,
    keep: bool,
    record: bool,
    window: torch.Tensor | None = None,
) -> ForwardState:
    """The layer's forward pass over all steps (module docstring); ``keep`` stores what
    :func:`backward` needs, ``record`` the membrane and threshold for figures, ``window`` gives
    the reductions instead of the spikes (:class:`ForwardState`)."""
    use_numba_threads()
    steps, batch, _ = x.shape
    n = weight.shape[1]
    shape = (steps, batch, n)
    empty = x.new_empty((0, 0, 0))
    adaptive = beta.nonzero()
    first = int(adaptive.min()) if len(adaptive) else n
    from_first = (steps, batch, n - first)
    reduced = window is not None
    state = ForwardState(
        spikes=empty if reduced else x.new_empty(shape),
        filtered=x.new_zeros((batch, n) if reduced else (0, 0)),
        counts=x.new_zeros((batch, n) if reduced else (0, 0)),
        bits=torch.empty(shape if keep else (0, 0, 0), dtype=torch.uint8),
        previous_membrane=x.new_empty(from_first) if keep else empty,
        threshold=x.new_empty(shape if record else from_first) if keep or record else empty,
        derivative=x.new_empty(shape) if keep else empty,
        membrane=x.new_empty(shape) if record else empty,
    )
    _forward(
        x.contiguous().numpy(),
        weight.detach().contiguous().numpy(),
        synapse_offsets(delays).to(torch.int32).numpy(),
        recurrent_weight.detach().contiguous().numpy(),
        synapse_offsets(recurrent_delays).to(torch.int32).numpy(),
        tuple(k),
        beta.to(x.dtype).contiguous().numpy(),
        refractory_steps,
        n_delays * n,
        (window if reduced else x.new_empty(0)).contiguous().numpy(),
        *(part.numpy() for part in state),
    )
    return state


def backward(  # noqa: PLR0913
    gradient: SpikeGradient,
    x: torch.Tensor,
    state: ForwardState,
    recurrent_weight: torch.Tensor,
    delays: torch.Tensor,
    recurrent_delays: torch.Tensor,
    k: Coefficients,
    beta: torch.Tensor,
    n_delays: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of the input and recurrent weights from the loss's gradient of the spikes
    (adjoint recurrences in :meth:`snnexp.functional.lsnn._FusedLSNN.backward`). The samples
    are cut into a fixed number of chunks, each summing its own gradients, added up in order."""
    use_numba_threads()
    _, batch, n = state.bits.shape
    chunks = min(batch, CHUNKS)
    span = n_delays * n
    chunk_grads = x.new_zeros((chunks, x.shape[2], span))
    chunk_recurrent_grads = x.new_zeros((chunks, n, span))
    _backward(
        *(part.contiguous().numpy() for part in gradient),
        x.contiguous().numpy(),
        state.bits.numpy(),
        state.previous_membrane.numpy(),
        state.threshold.numpy(),
        state.derivative.numpy(),
        delay_expanded(recurrent_weight.detach(), recurrent_delays, n_delays).numpy(),
        tuple(k),
        beta.to(x.dtype).contiguous().numpy(),
        chunk_grads.numpy(),
        chunk_recurrent_grads.numpy(),
    )
    grad_weight = chunk_grads.sum(0).gather(1, synapse_offsets(delays))
    grad_recurrent = chunk_recurrent_grads.sum(0).gather(1, synapse_offsets(recurrent_delays))
    return grad_weight, grad_recurrent
