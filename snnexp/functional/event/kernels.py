r"""Compiled CPU kernels of the causal scan (:mod:`snnexp.functional.event.scan`), with Numba.

The same scan as the vectorised torch engine, written as loops: one sample at a time, the
sorted inputs in time order, and for each input the outputs that have not spiked yet, whose
cumulative sums a_j, b_j (module docstring of :mod:`snnexp.functional.event.scan`) take the
input's weight row. Nothing is materialised beyond a sample's (a_j, b_j) and the list of its
scanning outputs, so the cost is one multiply-add pair per (input, scanning output) with no
temporaries and no indexing overhead; torch's vectorised engine spends ~25 passes over memory on
the same step.

A cheap upper bound of the membrane over the input's interval [x_k, x_{k+1}) rules out almost
every (input, output): only where the bound reaches the threshold is the rule's exact test
(the same arithmetic as the torch engine's ``crosses``) evaluated,

    ET:  max_{[x_k, x_{k+1}]} (a x - b) e^{-x}  <=  (a x_{k+1} - b) e^{-x_k}    (a > 0),
    DT:  max_{[X_{k+1}, X_k]} b X - a X^2       <=  b X_k                      (a > 0),

with a relative margin of 1e-9 so that rounding never skips a crossing.

The backward kernel accumulates the implicit-function-theorem terms of the scan over each
spiking output's causal inputs; with the outputs of a sample sorted by their last causal input,
the outputs that take input k are a prefix of that order. The psp and drive factor through
e^{-(x_out - x_i)} = e^{-x_out} e^{x_i} (x in the rule's time unit), one multiply per term.

Kernels release the GIL (``nogil``), so the thread pool of the scan runs them in parallel.
All arrays are NumPy views of the torch tensors (float64 or float32, indices int64).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

ET = 0
DT = 1
BOUND_MARGIN = 1.0 - 1e-9


@njit(nogil=True, cache=True, inline="always")
def _crosses(kind: int, a: float, b: float, start: float, end: float, threshold: float) -> bool:
    """The torch engine's ``crosses`` of EtRule / DtRule for one (a, b) and interval."""
    if not a > 0.0:
        return False
    if kind == ET:
        peak = min(max(b / a + 1.0, start), end)
        return (a * peak - b) * math.exp(-peak) >= threshold
    peak = min(max(b / (2.0 * a), math.exp(-end)), math.exp(-start))
    return (b - a * peak) * peak >= threshold


@njit(nogil=True, cache=True)
def scan_rows(
    kind: int,
    threshold: float,
    x: np.ndarray,
    x_next: np.ndarray,
    term_1: np.ndarray,
    term_2: np.ndarray,
    order: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray,
    found_a: np.ndarray,
    found_b: np.ndarray,
    last_causal: np.ndarray,
) -> None:
    """Forward scan of the samples ``rows``: (a, b, last causal index) of each crossing into the
    flat (pair p = row * n_out + j) arrays found_a, found_b, last_causal (left as they are for
    pairs that never cross)."""
    n_out = weights.shape[1]
    n_scan = x.shape[1]
    a = np.empty(n_out)
    b = np.empty(n_out)
    outputs = np.empty(n_out, dtype=np.int64)
    for row in rows:
        a[:] = 0.0
        b[:] = 0.0
        for j in range(n_out):
            outputs[j] = j
        n_scanning = n_out
        for k in range(n_scan):
            start = x[row, k]
            if not start < math.inf or n_scanning == 0:
                break
            end = x_next[row, k]
            f_1 = term_1[row, k]
            f_2 = term_2[row, k]
            w = weights[order[row, k]]
            scale = math.exp(-start)
            largest = -math.inf
            for i in range(n_scanning):
                w_i = w[outputs[i]]
                a_i = a[i] + w_i * f_1
                b_i = b[i] + w_i * f_2
                a[i] = a_i
                b[i] = b_i
                bound = (a_i * end - b_i) * scale if kind == ET else b_i * scale
                if a_i > 0.0 and bound > largest:
                    largest = bound
            if largest < BOUND_MARGIN * threshold:
                continue
            for i in range(n_scanning - 1, -1, -1):
                if _crosses(kind, a[i], b[i], start, end, threshold):
                    pair = row * n_out + outputs[i]
                    found_a[pair] = a[i]
                    found_b[pair] = b[i]
                    last_causal[pair] = k
                    n_scanning -= 1
                    a[i] = a[n_scanning]
                    b[i] = b[n_scanning]
                    outputs[i] = outputs[n_scanning]


@njit(nogil=True, cache=True)
def accumulate_rows(
    kind: int,
    rows: np.ndarray,
    grad: np.ndarray,
    grad_for_weights: np.ndarray,
    out_times: np.ndarray,
    last_causal: np.ndarray,
    x: np.ndarray,
    order: np.ndarray,
    weights: np.ndarray,
    grad_w: np.ndarray,
    grad_x: np.ndarray,
    need_input_grad: bool,
) -> None:
    """Backward of the samples ``rows`` (per pair arrays shaped (batch, n_out); x, order sorted
    inputs (batch, n_in)): grad_w[i, j] += -psp(D) grad_for_weights and, if ``need_input_grad``,
    grad_x[row, k] (sorted input order) += sum_j w drive(D) grad, over the causal inputs."""
    n_out = weights.shape[1]
    for row in rows:
        count = 0
        for j in range(n_out):
            if last_causal[row, j] >= 0 and grad[row, j] != 0.0:
                count += 1
        if count == 0:
            continue
        outputs = np.empty(count, dtype=np.int64)
        count = 0
        for j in range(n_out):
            if last_causal[row, j] >= 0 and grad[row, j] != 0.0:
                outputs[count] = j
                count += 1
        outputs = outputs[np.argsort(-last_causal[row][outputs], kind="mergesort")]
        t = out_times[row][outputs]
        decay_out = np.exp(-t)
        g = grad[row][outputs]
        g_w = grad_for_weights[row][outputs]
        n_taking = count
        for k in range(last_causal[row, outputs[0]] + 1):
            while last_causal[row, outputs[n_taking - 1]] < k:
                n_taking -= 1
            x_k = x[row, k]
            grow = math.exp(x_k)
            source = order[row, k]
            w = weights[source]
            gw_row = grad_w[source]
            total = 0.0
            for i in range(n_taking):
                delay = t[i] - x_k
                if not delay > 0.0:
                    continue
                decay = decay_out[i] * grow
                if kind == ET:
                    psp = delay * decay
                    drive = decay - delay * decay
                else:
                    psp = decay - decay * decay
                    drive = 2.0 * decay * decay - decay
                j = outputs[i]
                gw_row[j] -= psp * g_w[i]
                total += w[j] * drive * g[i]
            if need_input_grad:
                grad_x[row, k] += total
