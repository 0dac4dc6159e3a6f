"""The exact first-spike math: closed-form spike times (ET, DT), the causal scan that finds them
and its Numba kernels."""
