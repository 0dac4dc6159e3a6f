"""The Open Neuromorphic SNN library benchmark network (open-neuromorphic.github.io, "Spiking
Neural Network (SNN) Library Benchmarks", 2023-24): one Linear(n, n) and one LIF layer, the
input ``torch.randn(steps, batch, n)``, one forward pass and the backward pass of
``output.sum()``. Each library runs its own LIF neuron with the parameters of that benchmark's
code (snnTorch Leaky beta 0.95; norse LIFBox, tau_mem_inv 100, dt 1 ms; spikingjelly LIFNode,
tau 5, atan surrogate, multi-step mode, torch backend); snnexp a leaky layer with decay 0.95 and
subtractive reset. Every Linear is without bias (snnexp's layers carry bias as extra input
rows), so the products are the same size for all.

Used by ``benchmarks/bptt_step.py``; a library that is not installed is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from snnexp.functional.surrogate import Surrogate
from snnexp.modules.neurons import SpikingNeurons
from snnexp.modules.stepped_layer import SpikingLayer

BETA = 0.95

Step = Callable[[], None]


def _backward_of(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Step:
    def step() -> None:
        forward(x).sum().backward()

    return step


def snnexp_step(x: torch.Tensor) -> Step:
    """snnexp's leaky layer: the product of all steps at once, then the neurons step by step."""
    n = x.shape[2]
    neurons = SpikingNeurons(
        n, "leaky", dt=1.0, tau_mem=-1.0 / math.log(BETA), surrogate=Surrogate("arctan", 2.0)
    )
    layer = SpikingLayer(n, neurons).to(x.device)
    layer.reset_parameters("uniform_fan_in", 0.0, 1.0)

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        state = layer.initial_state(inputs.shape[1], inputs.device, inputs.dtype)
        return layer.run(inputs, state)[0]

    return _backward_of(forward, x)


def snntorch_step(x: torch.Tensor) -> Step | None:
    """snnTorch: nn.Linear and snn.Leaky step by step, as the benchmark's code."""
    try:
        import snntorch
    except ImportError:
        return None
    n = x.shape[2]
    fc = nn.Linear(n, n, bias=False, device=x.device)
    lif = snntorch.Leaky(beta=BETA).to(x.device)

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        mem = lif.init_leaky()
        spikes = []
        for step in inputs:
            spike, mem = lif(fc(step), mem)
            spikes.append(spike)
        return torch.stack(spikes)

    return _backward_of(forward, x)


def norse_step(x: torch.Tensor) -> Step | None:
    """norse: nn.Linear and LIFBoxCell in a SequentialState over all steps (without
    torch.compile, which the benchmark used on a GPU)."""
    try:
        from norse.torch import LIFBoxCell, LIFBoxParameters, SequentialState
    except ImportError:
        return None
    n = x.shape[2]
    p = LIFBoxParameters(
        tau_mem_inv=torch.tensor([100.0], device=x.device),
        v_leak=torch.tensor([0.0], device=x.device),
        v_th=torch.tensor([1.0], device=x.device),
        v_reset=torch.tensor([0.0], device=x.device),
        alpha=torch.tensor([100.0], device=x.device),
    )
    model = SequentialState(nn.Linear(n, n, bias=False), LIFBoxCell(p)).to(x.device)

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        spikes, state = [], None
        for step in inputs:
            spike, state = model(step, state)
            spikes.append(spike)
        return torch.stack(spikes)

    return _backward_of(forward, x)


def spikingjelly_step(x: torch.Tensor) -> Step | None:
    """spikingjelly: layer.Linear and neuron.LIFNode in multi-step mode, torch backend."""
    try:
        from spikingjelly.activation_based import functional, layer, neuron, surrogate
    except ImportError:
        return None
    n = x.shape[2]
    model = nn.Sequential(
        layer.Linear(n, n, bias=False, step_mode="m"),
        neuron.LIFNode(tau=5.0, surrogate_function=surrogate.ATan(), step_mode="m"),
    ).to(x.device)

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        functional.reset_net(model)
        return model(inputs)

    return _backward_of(forward, x)


PEERS: dict[str, Callable[[torch.Tensor], Step | None]] = {
    "snnTorch": snntorch_step,
    "norse": norse_step,
    "spikingjelly (torch)": spikingjelly_step,
}
"""The other libraries, by name: each gives its step, or None when not installed."""
