"""How snnexp's time-stepped neurons and NIR's continuous-time primitives correspond.

NIR stores no time step. Its LIF is ``tau dv/dt = (v_leak - v) + r I`` and its CubaLIF adds
``tau_syn dI/dt = -I + w_in S``; a simulator with step ``dt`` (snnTorch assumes 1e-4, norse 1e-3
by default) integrates them with forward Euler:

    I_t = (1 - dt / tau_syn) I_{t-1} + (dt w_in / tau_syn) S_t
    v_t = (1 - dt / tau) v_{t-1} + (dt r / tau) I_t

snnexp's steps are ``i_t = alpha_s i_{t-1} + x_t`` and ``v_t = alpha v_{t-1} + i_t`` with
``alpha = exp(-model.dt / tau_mem)``. Written for a simulator of step ``dt`` the two agree
exactly when

    tau = dt / (1 - alpha),   r = tau / dt,   tau_syn = dt / (1 - alpha_s),   w_in = tau_syn / dt

which is what snnTorch writes and reads. Reading a graph back, ``alpha = 1 - dt / tau`` and
``tau_mem = -model.dt / ln(alpha)``.
"""

from __future__ import annotations

import numpy as np

SNNTORCH_DT = 1e-4
"""The step snnTorch's NIR bridge assumes (and the default of ``snnexp nir``'s --dt)."""


def nir_tau(decay: np.ndarray, dt: float) -> np.ndarray:
    """The NIR time constant dt / (1 - decay) whose Euler step of ``dt`` decays by ``decay``."""
    return dt / (1.0 - decay)


def step_decay(tau: np.ndarray, dt: float) -> np.ndarray:
    """The decay 1 - dt / tau of an Euler step ``dt`` of a NIR time constant ``tau``."""
    return 1.0 - dt / np.asarray(tau, dtype=np.float64)


def snnexp_tau(decay: np.ndarray, model_dt: float) -> np.ndarray:
    """The snnexp time constant -model_dt / ln(decay) of a decay per step of ``model_dt``."""
    return -model_dt / np.log(decay)
