"""torch.nn.Module shells around the time-stepped neuron models of :mod:`snnexp.functional.stepped`.

Each neuron model is an activation over a whole sequence, usable in ``nn.Sequential``:

>>> net = nn.Sequential(nn.Linear(784, 1000), Leaky(1000, tau_mem=2.0, dt=0.1),
...                     nn.Linear(1000, 10), Leaky(10, tau_mem=2.0, dt=0.1))
>>> spikes = net(input_spikes)            # (steps, batch, 784) -> (steps, batch, 10)

``nn.Linear`` projects all steps at once; only the neuron recurrence loops over time.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snnexp.functional.leaky_cpu import fused_leaky, fused_leaky_applies
from snnexp.functional.stepped import step_model
from snnexp.functional.stepped.base import (
    MembraneConstants,
    NeuronState,
    StepCoefficients,
    decay,
    initial_state,
    neuron_step,
)
from snnexp.functional.surrogate import Surrogate


class SpikingNeurons(nn.Module):
    """A population of time-stepped neurons of a registered model (leaky, synaptic, alif, ...).

    Time constants are in the units of ``dt``; with ``per_neuron_tau`` each neuron has its own,
    with ``learn_tau`` they are trained. In an alif population the last ``n_adaptive`` neurons
    (all by default) have an adaptive threshold of strength ``adapt_strength``, the others a
    fixed one (an LSNN layer). See :mod:`snnexp.functional.stepped` for the models' equations.
    """

    def __init__(
        self,
        size: int,
        model: str = "leaky",
        *,
        dt: float = 1.0,
        tau_mem: float = 20.0,
        tau_syn: float = 5.0,
        tau_adapt: float = 700.0,
        adapt_strength: float = 1.8,
        n_adaptive: int | None = None,
        threshold: float = 1.0,
        reset: str = "subtract",
        refractory_steps: int = 0,
        resistance: float = 1.0,
        capacitance: float = 1.0,
        learn_tau: bool = False,
        per_neuron_tau: bool = False,
        surrogate: Surrogate | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.size = size
        self.model = model
        self.dt = dt
        self.threshold = threshold
        self.reset = reset
        self.refractory_steps = refractory_steps
        self.resistance = resistance
        self.capacitance = capacitance
        self.surrogate = surrogate or Surrogate()
        self.step_model = step_model(model)
        StepCoefficients(model=model, reset=reset)
        shape = (size,) if per_neuron_tau else (1,)
        for name, value in (("tau_mem", tau_mem), ("tau_syn", tau_syn)):
            tensor = torch.full(shape, float(value), dtype=dtype)
            if learn_tau:
                self.register_parameter(name, nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor)
        self.tau_adapt = tau_adapt
        strength = torch.zeros(size, dtype=dtype)
        if self.step_model.adaptive:
            n_adaptive = size if n_adaptive is None else n_adaptive
            strength[size - n_adaptive :] = adapt_strength
        self.register_buffer("adapt_strength", strength)

    def step_params(self) -> StepCoefficients:
        """The decay factors and gains of one step from the current time constants."""
        constants = MembraneConstants(self.dt, self.tau_mem, self.resistance, self.capacitance)
        mem_decay, gain = self.step_model.membrane(constants)
        return StepCoefficients(
            model=self.model,
            mem_decay=mem_decay,
            syn_decay=decay(self.dt, self.tau_syn),
            adapt_decay=math.exp(-self.dt / self.tau_adapt),
            adapt_strength=self.adapt_strength,
            input_gain=gain,
            threshold=self.threshold,
            reset=self.reset,
            refractory_steps=self.refractory_steps,
        )

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> NeuronState:
        """The resting state of ``batch`` samples."""
        return initial_state(self.step_params(), (batch, self.size), device, dtype)

    def all_steps(
        self, currents: torch.Tensor, state: NeuronState, params: StepCoefficients
    ) -> tuple[torch.Tensor, NeuronState] | None:
        """The spikes of all steps of ``currents`` ``(steps, batch, size)`` and the state after
        the last one as one compiled loop, where it computes them
        (:func:`snnexp.functional.leaky_cpu.fused_leaky_applies`: bitwise the step-by-step
        results), else None."""
        if not fused_leaky_applies(currents, params, self.surrogate):
            return None
        return fused_leaky(currents, state, params, self.surrogate)

    def forward(self, currents: torch.Tensor, state: NeuronState | None = None) -> torch.Tensor:
        """Input currents ``(steps, batch, size)`` -> spikes of the same shape."""
        params = self.step_params()
        if state is None:
            state = initial_state(params, currents.shape[1:], currents.device, currents.dtype)
        fused = self.all_steps(currents, state, params)
        if fused is not None:
            return fused[0]
        spikes = []
        for current in currents:
            state = neuron_step(current, state, params, self.surrogate)
            spikes.append(state.z)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return (
            f"{self.size}, model={self.model}, dt={self.dt}, threshold={self.threshold}, "
            f"reset={self.reset}, {self.surrogate}"
        )


class Leaky(SpikingNeurons):
    """Leaky integrate-and-fire neurons (1st order): v_t = alpha v_{t-1} + x_t - reset."""

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(size, "leaky", **kwargs)  # type: ignore[arg-type]


class Synaptic(SpikingNeurons):
    """Current-based LIF neurons (2nd order): an exponential synaptic current feeds v."""

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(size, "synaptic", **kwargs)  # type: ignore[arg-type]


class Alpha(SpikingNeurons):
    """Neurons whose membrane answers an input spike with an alpha function (t/tau) e^{-t/tau}."""

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(size, "alpha", **kwargs)  # type: ignore[arg-type]


class Alif(SpikingNeurons):
    """Adaptive LIF neurons (LSNN): the threshold rises by adapt_strength x a after spikes."""

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(size, "alif", **kwargs)  # type: ignore[arg-type]


class Lapicque(SpikingNeurons):
    """Lapicque's RC neuron: v_t = (1 - dt/(R C)) v_{t-1} + (dt / C) x_t - reset."""

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(size, "lapicque", **kwargs)  # type: ignore[arg-type]
