r"""Time-stepped neuron models for BPTT: pure step functions over a state (tensors in, tensors out).

One step of length dt maps the input current x_t of a step and the state of the previous step to
the spikes z_t and the new state. With decay factors alpha = exp(-dt / tau_mem),
alpha_s = exp(-dt / tau_syn), rho = exp(-dt / tau_adapt):

    leaky      v_t = alpha v_{t-1} + x_t - R_t
    synaptic   i_t = alpha_s i_{t-1} + x_t,   v_t = alpha v_{t-1} + i_t - R_t      (current-based)
    alpha      the synaptic model with alpha_s = alpha: the response of v to one input spike is
               (t / dt + 1) alpha^{t / dt}, the alpha-function PSP (t / tau) e^{-t / tau}
    lapicque   v_t = (1 - dt / (R C)) v_{t-1} + (dt / C) x_t - R_t                 (RC circuit)
    alif       leaky, with an adaptive threshold (LSNN, Bellec et al. 2018):
               a_t = rho a_{t-1} + (1 - rho) z_{t-1},   theta_t = theta + beta a_t

and z_t = H(v_t - theta_t), with the surrogate derivative of :mod:`snnexp.neurons.surrogate`.
The reset R_t follows a spike of the previous step:

    subtract   R_t = theta z_{t-1}                       (the base threshold, as in LSNN)
    zero       v_t = alpha v_{t-1} (1 - z_{t-1}) + ...   (v restarts from 0)

The reset is taken out of the gradient (z_{t-1} detached), as snnTorch does by default. After a
spike a neuron stays silent for ``refractory_steps`` steps (it keeps integrating). Decay factors
may be tensors broadcast over the neurons (per-neuron or learnable time constants); beta may be
a per-neuron tensor (0 for the regular neurons of a mixed LSNN layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from snnexp.choices import NEURON_MODELS, RESETS
from snnexp.neurons.surrogate import Surrogate, spike

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
class StepParams:
    """Parameters of one step: the model, its decay factors and gains, threshold and reset."""

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
        if self.model not in NEURON_MODELS:
            raise ValueError(
                f"unknown neuron model {self.model!r}; available: {', '.join(NEURON_MODELS)}"
            )
        if self.reset not in RESETS:
            raise ValueError(f"unknown reset {self.reset!r}; available: {', '.join(RESETS)}")

    @property
    def has_current(self) -> bool:
        """Whether the model has a synaptic-current state."""
        return self.model in ("synaptic", "alpha")


def initial_state(
    params: StepParams, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> NeuronState:
    """The resting state: everything 0, no spike, not refractory."""

    def zeros() -> torch.Tensor:
        return torch.zeros(shape, device=device, dtype=dtype)

    return NeuronState(
        v=zeros(),
        i=zeros() if params.has_current else None,
        a=zeros() if params.model == "alif" else None,
        z=zeros(),
        r=zeros() if params.refractory_steps > 0 else None,
    )


def threshold_of(state: NeuronState, params: StepParams) -> Scalar:
    """theta_t: the base threshold, plus beta a_t for the alif model."""
    if state.a is None:
        return params.threshold
    return params.threshold + params.adapt_strength * state.a


def neuron_step(
    current: torch.Tensor, state: NeuronState, params: StepParams, surrogate: Surrogate
) -> NeuronState:
    """One step of the neuron model (see the module docstring); returns the new state, whose
    ``z`` holds this step's spikes."""
    fired = state.z.detach()
    i = None
    drive = current
    if params.has_current:
        syn_decay = params.mem_decay if params.model == "alpha" else params.syn_decay
        i = syn_decay * state.i + current
        drive = i
    if params.reset == "subtract":
        v = params.mem_decay * state.v + params.input_gain * drive - params.threshold * fired
    else:
        v = params.mem_decay * state.v * (1.0 - fired) + params.input_gain * drive
    a = None
    if params.model == "alif":
        a = params.adapt_decay * state.a + (1.0 - params.adapt_decay) * fired
    new_state = NeuronState(v=v, i=i, a=a, z=state.z, r=state.r)
    z = spike(v - threshold_of(new_state, params), surrogate)
    r = None
    if state.r is not None:
        z = z * (state.r <= 0).to(z.dtype)
        r = torch.where(z > 0, torch.full_like(state.r, params.refractory_steps), state.r - 1)
        r = r.clamp(min=0)
    return new_state._replace(z=z, r=r)


def integrator_step(current: torch.Tensor, v: torch.Tensor, mem_decay: Scalar) -> torch.Tensor:
    """A non-spiking leaky read-out neuron: v_t = alpha v_{t-1} + x_t."""
    return mem_decay * v + current
