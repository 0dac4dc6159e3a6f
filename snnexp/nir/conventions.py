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

An exact first-spike network has no step of its own: its CubaLIF is written so that the Euler
step of dt is the exact propagation over the step (:func:`exact_step_gain` in r), and its input
spikes, at continuous times, reach a client as :class:`StepInputs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def propagation(h: float | np.ndarray, tau_syn: float, tau_mem: float) -> np.ndarray:
    """The membrane potential (per unit of r) a current of 1 at time 0 has raised by time
    ``h`` in the continuous neuron tau_syn dI/dt = -I, tau_mem dv/dt = -v + r I (v(0) = 0):

        kappa(h) = tau_syn (e^{-h / tau_syn} - e^{-h / tau_mem}) / (tau_syn - tau_mem),
        kappa(h) = (h / tau) e^{-h / tau}   for tau_syn = tau_mem = tau.
    """
    h = np.asarray(h, dtype=np.float64)
    if math.isclose(tau_syn, tau_mem, rel_tol=1e-12):
        return h / tau_mem * np.exp(-h / tau_mem)
    return tau_syn * (np.exp(-h / tau_syn) - np.exp(-h / tau_mem)) / (tau_syn - tau_mem)


def exact_step_gain(tau_syn: float, tau_mem: float, dt: float) -> float:
    """The factor of r that makes an Euler step ``dt`` of NIR's CubaLIF (its time constants
    step-matched, :func:`nir_tau`) the exact propagation of the continuous neuron over the step:

        v_{k+1} = e^{-dt / tau_mem} v_k + r kappa(dt) I_k
                = (1 - dt / tau_mem') v_k + (dt / tau_mem') (r gain) I_k,
        gain = kappa(dt) / (1 - e^{-dt / tau_mem})

    (:func:`propagation`; I_k the synaptic current at the start of the step, which a
    simulator adds the step's input spikes to before it updates v, as norse does). Without
    it, forward Euler holds each step's current for the whole step and neurons fire early."""
    return float(propagation(dt, tau_syn, tau_mem) / (1.0 - math.exp(-dt / tau_mem)))


@dataclass(frozen=True)
class StepInputs:
    """Spikes at continuous times fed to a simulator of step ``dt`` (e.g. norse running a
    first-spike network that ``snnexp nir export`` wrote) so that every neuron's state at
    every step boundary is exact. A spike of weight 1 at t = (k + f) dt is split between the
    steps k and k + 1 of the client:

        early = kappa((1 - f) dt) / kappa(dt),
        late = e^{-(1 - f) dt / tau_syn} - e^{-dt / tau_syn} early

    (:func:`propagation`): the current and the membrane potential that the two parts leave
    after step k + 1 are those of the spike at its time. ``tau_syn`` and ``tau_mem`` are the
    receiving populations' (the same for every layer of the networks snnexp exports)."""

    step: np.ndarray
    early: np.ndarray
    late: np.ndarray

    @classmethod
    def of(cls, times: np.ndarray, dt: float, tau_syn: float, tau_mem: float) -> StepInputs:
        """Split ``times`` (any shape; inf: no spike) for a client of step ``dt``."""
        times = np.asarray(times, dtype=np.float64)
        finite = np.isfinite(times)
        step = np.where(finite, np.floor(np.where(finite, times, 0.0) / dt), -2).astype(np.int64)
        rest = np.where(finite, (step + 1) * dt - times, 0.0)
        early = propagation(rest, tau_syn, tau_mem) / propagation(dt, tau_syn, tau_mem)
        late = np.where(finite, np.exp(-rest / tau_syn) - math.exp(-dt / tau_syn) * early, 0.0)
        return cls(step, early, late)

    def at(self, k: int) -> np.ndarray:
        """The input of the client's step ``k``, shaped as the spike times."""
        now = np.where(self.step == k, self.early, 0.0)
        return now + np.where(self.step == k - 1, self.late, 0.0)
