r"""What every time-stepped neuron model shares: the state, the step coefficients, the reset and
the spike with its refractory period, and the model-independent entry points.

One step of length dt maps the input current x_t of a step and the state of the previous step to
the spikes z_t and the new state (the models: :mod:`.leaky`, :mod:`.synaptic`, :mod:`.alpha`,
:mod:`.alif`, :mod:`.lapicque`). Every model ends with

    z_t = H(v_t - theta_t)

with the surrogate derivative of :mod:`snnexp.functional.surrogate`. The reset R_t follows a
spike of the previous step:

    subtract   v_t = alpha v_{t-1} + g drive_t - theta z_{t-1}   (the base threshold, as in LSNN)
    zero       v_t = alpha v_{t-1} (1 - z_{t-1}) + g drive_t     (v restarts from 0)

where alpha is the membrane decay, g the input gain and drive_t the model's input to v (the
current x_t, or the synaptic current i_t). The reset is taken out of the gradient (z_{t-1}
detached), as snnTorch does by default. After a spike a neuron stays silent for
``refractory_steps`` steps (it keeps integrating). Decay factors may be tensors broadcast over
the neurons (per-neuron or learnable time constants); beta may be a per-neuron tensor (0 for the
regular neurons of a mixed LSNN layer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from snnexp.choices import RESETS
from snnexp.functional.stepped import step_model
from snnexp.functional.surrogate import Surrogate, spike

Scalar = float | torch.Tensor


class NeuronState(NamedTuple):
    """State after a step: membrane ``v``, synaptic current ``i`` (synaptic / alpha models),
    adaptation ``a`` (alif), the step's spikes ``z`` and the refractory steps left ``r``."""

    v: torch.Tensor
    i: torch.Tensor | None
    a: torch.Tensor | None
    z: torch.Tensor
    r: torch.Tensor | None


@dataclass(frozen=True)
class StepCoefficients:
    """The coefficients of one step of a model (from its time constants and dt): decay factors
    and gains, threshold and reset."""

    model: str = "leaky"
    mem_decay: Scalar = 0.95
    syn_decay: Scalar = 0.9
    adapt_decay: Scalar = 0.0
    adapt_strength: Scalar = 0.0
    input_gain: Scalar = 1.0
    threshold: float = 1.0
    reset: str = "subtract"
    refractory_steps: int = 0

    def __post_init__(self) -> None:
        step_model(self.model)
        if self.reset not in RESETS:
            raise ValueError(f"unknown reset {self.reset!r}; available: {', '.join(RESETS)}")


class MembraneConstants(NamedTuple):
    """What a model's membrane coefficients are computed from: the step and the constants."""

    dt: float
    tau_mem: torch.Tensor
    resistance: float
    capacitance: float


StepFunction = Callable[[torch.Tensor, NeuronState, StepCoefficients, Surrogate], NeuronState]
MembraneFunction = Callable[[MembraneConstants], tuple[Scalar, Scalar]]


def decay(dt: float, tau: torch.Tensor) -> torch.Tensor:
    """exp(-dt / tau), tau kept above dt / 100."""
    return torch.exp(-dt / tau.clamp(min=dt / 100))


def exponential_membrane(constants: MembraneConstants) -> tuple[Scalar, Scalar]:
    """(alpha, g) = (exp(-dt / tau_mem), 1): the membrane of the leaky family."""
    return decay(constants.dt, constants.tau_mem), 1.0


@dataclass(frozen=True)
class StepModel:
    """A registered neuron model: its step function, which optional states it keeps and how its
    membrane decay and input gain follow from the constants."""

    name: str
    step: StepFunction
    summary: str
    has_current: bool = False
    adaptive: bool = False
    membrane: MembraneFunction = exponential_membrane


def initial_state(
    params: StepCoefficients, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> NeuronState:
    """The resting state: everything 0, no spike, not refractory."""
    model = step_model(params.model)

    def zeros() -> torch.Tensor:
        return torch.zeros(shape, device=device, dtype=dtype)

    return NeuronState(
        v=zeros(),
        i=zeros() if model.has_current else None,
        a=zeros() if model.adaptive else None,
        z=zeros(),
        r=zeros() if params.refractory_steps > 0 else None,
    )


def neuron_step(
    current: torch.Tensor, state: NeuronState, params: StepCoefficients, surrogate: Surrogate
) -> NeuronState:
    """One step of the model ``params.model``; returns the new state, whose ``z`` holds this
    step's spikes."""
    return step_model(params.model).step(current, state, params, surrogate)


def membrane_update(
    v: torch.Tensor, drive: torch.Tensor, fired: torch.Tensor, params: StepCoefficients
) -> torch.Tensor:
    """v_t from v_{t-1}, the step's drive and the (detached) spikes of the previous step, with
    the configured reset (module docstring)."""
    if params.reset == "subtract":
        return params.mem_decay * v + params.input_gain * drive - params.threshold * fired
    return params.mem_decay * v * (1.0 - fired) + params.input_gain * drive


def threshold_of(state: NeuronState, params: StepCoefficients) -> Scalar:
    """theta_t: the base threshold, plus beta a_t for an adaptive model."""
    if state.a is None:
        return params.threshold
    return params.threshold + params.adapt_strength * state.a


def fire(state: NeuronState, params: StepCoefficients, surrogate: Surrogate) -> NeuronState:
    """The step's spikes z_t = H(v_t - theta_t) of an updated ``state`` (whose ``z`` and ``r``
    are still the previous step's), silenced while refractory."""
    z = spike(state.v - threshold_of(state, params), surrogate)
    r = None
    if state.r is not None:
        z = z * (state.r <= 0).to(z.dtype)
        r = torch.where(z > 0, torch.full_like(state.r, params.refractory_steps), state.r - 1)
        r = r.clamp(min=0)
    return state._replace(z=z, r=r)


def integrator_step(current: torch.Tensor, v: torch.Tensor, mem_decay: Scalar) -> torch.Tensor:
    """A non-spiking leaky read-out neuron: v_t = alpha v_{t-1} + x_t."""
    return mem_decay * v + current
