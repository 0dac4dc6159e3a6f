"""The compiled leaky loop (snnexp.functional.leaky_cpu) against the step-by-step torch
operations: spikes, final state and gradients bitwise equal."""

from __future__ import annotations

import math

import pytest
import torch

from snnexp.functional.leaky_cpu import fused_leaky, fused_leaky_applies
from snnexp.functional.stepped.base import StepCoefficients, initial_state, neuron_step
from snnexp.functional.surrogate import Surrogate
from snnexp.functional.threads import torch_single_threaded


def _torch_steps(currents, state, params, surrogate):  # noqa: ANN001, ANN202
    spikes = []
    for current in currents:
        state = neuron_step(current, state, params, surrogate)
        spikes.append(state.z)
    return torch.stack(spikes), state


def _run(  # noqa: ANN202, PLR0913
    fused: bool,
    dtype: torch.dtype,
    reset: str,
    surrogate: Surrogate,
    threads: int = 2,
    spikes_in_loss: bool = True,
    model: str = "leaky",
):
    """Two chunks of steps (the second starting from the first's state, as a chunked
    simulation does) and the gradients of a loss of both chunks' spikes (unless not
    ``spikes_in_loss``) and the last membrane."""
    gen = torch.Generator().manual_seed(5)
    decay = torch.exp(-1.0 / torch.full((1,), 19.5, dtype=dtype))
    syn_decay = torch.exp(-1.0 / torch.linspace(3.0, 8.0, 50, dtype=dtype))
    gain = 0.45 if model == "lapicque" else 1.0
    params = StepCoefficients(
        model=model,
        mem_decay=1.0 if model == "iaf" else decay,
        syn_decay=syn_decay,
        input_gain=gain,
        threshold=1.0,
        reset=reset,
    )
    first = (torch.rand(7, 33, 50, generator=gen, dtype=dtype) * 0.8).requires_grad_(True)
    second = (torch.rand(6, 33, 50, generator=gen, dtype=dtype) * 0.8).requires_grad_(True)
    weights = torch.randn(13, 33, 50, generator=gen, dtype=dtype)
    step = fused_leaky if fused else _torch_steps
    state = initial_state(params, (33, 50), torch.device("cpu"), dtype)
    initial_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch_single_threaded():
            spikes_1, state = step(first, state, params, surrogate)
            spikes_2, state = step(second, state, params, surrogate)
            spikes = torch.cat([spikes_1, spikes_2])
            loss = (state.v * weights[0]).sum()
            if state.i is not None:
                loss = loss + (state.i * weights[1]).sum()
            if spikes_in_loss:
                loss = (spikes * weights).sum() + loss
            grads = torch.autograd.grad(loss, (first, second))
    finally:
        torch.set_num_threads(initial_threads)
    return [spikes, state.v, state.z, *([] if state.i is None else [state.i]), *grads]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize(
    "surrogate",
    [Surrogate("fast_sigmoid", 25.0), Surrogate("arctan", 2.0, 0.7), Surrogate("triangle", 3.0)],
)
def test_fused_leaky_is_bitwise_the_torch_steps(dtype, reset, surrogate):
    """Spikes, the state after the last step and the gradients of the input currents of two
    chunks are the torch steps' bit for bit, with one and two threads."""
    expected = _run(False, dtype, reset, surrogate)
    assert 0 < float(expected[0].detach().mean()) < 0.5, "some but not all neurons spike"
    for threads in (1, 2):
        fused = _run(True, dtype, reset, surrogate, threads)
        for ours, theirs in zip(fused, expected, strict=True):
            assert ours.dtype == theirs.dtype
            assert torch.equal(ours, theirs)


@pytest.mark.parametrize("model", ["iaf", "lapicque", "synaptic", "alpha"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_fused_models_with_other_membranes_or_a_current_are_bitwise_the_torch_steps(model, reset):
    """iaf (no leak), lapicque (input gain dt / C), synaptic (a current decaying with
    tau_syn, per neuron) and alpha (with tau_mem): the same bits as the torch steps."""
    surrogate = Surrogate("arctan", 2.0)
    expected = _run(False, torch.float32, reset, surrogate, model=model)
    for threads in (1, 2):
        ours = _run(True, torch.float32, reset, surrogate, threads, model=model)
        assert len(ours) == len(expected)
        for mine, theirs in zip(ours, expected, strict=True):
            assert torch.equal(mine, theirs)


@pytest.mark.parametrize("model", ["leaky", "synaptic"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_fused_leaky_gradient_through_the_membrane_alone_is_bitwise_the_torch_steps(model, reset):
    """With only the last membrane (and current) in the loss (no gradient reaches the spikes),
    the gradients flow through the decays alone, bit for bit as torch's graph adds them."""
    surrogate = Surrogate("fast_sigmoid", 25.0)
    expected = _run(False, torch.float32, reset, surrogate, spikes_in_loss=False, model=model)
    ours = _run(True, torch.float32, reset, surrogate, spikes_in_loss=False, model=model)
    assert expected[-1].abs().sum() > 0
    for mine, theirs in zip(ours, expected, strict=True):
        assert torch.equal(mine, theirs)


def test_fused_leaky_applies_only_where_it_computes_the_same():
    """Not for adaptive neurons, refractory neurons, trained time constants (of the membrane or
    the current) or half precision."""
    currents = torch.zeros(3, 2, 4)
    leaky = StepCoefficients(model="leaky", mem_decay=torch.tensor([math.exp(-0.05)]))
    surrogate = Surrogate()
    assert fused_leaky_applies(currents, leaky, surrogate)
    trained = StepCoefficients(mem_decay=torch.tensor([0.9], requires_grad=True))
    trained_current = StepCoefficients(
        model="synaptic", syn_decay=torch.tensor([0.8], requires_grad=True)
    )
    for params in (
        StepCoefficients(model="alif"),
        StepCoefficients(model="leaky", refractory_steps=2),
        trained,
        trained_current,
    ):
        assert not fused_leaky_applies(currents, params, surrogate)
    assert not fused_leaky_applies(currents.half(), leaky, surrogate)
