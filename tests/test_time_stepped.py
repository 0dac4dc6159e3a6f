"""Time-stepped neurons, surrogate gradients, encoders, layers and the BPTT network."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from tiny_networks import tiny_network
from torch import nn

from snnexp.data.encoding import (
    SpikeEncoder,
    interpolated_latency_spike_train,
    latency_spike_train,
    rate_spike_train,
    threshold_crossing_spike_train,
)
from snnexp.functional.stepped.base import StepCoefficients, initial_state, neuron_step
from snnexp.functional.surrogate import Surrogate, spike
from snnexp.losses.readout import ReadoutLoss, predict_unique_max, rate_penalty
from snnexp.modules.neurons import Leaky, SpikingNeurons
from snnexp.modules.readout import EVAL_SEED, Readout
from snnexp.modules.stepped_layer import SpikingLayer

NO_SURROGATE = Surrogate()


def run_trace(params: StepCoefficients, currents: list[float]) -> dict[str, list[float]]:
    """Step one neuron through ``currents``; return its v, i, a and z per step."""
    state = initial_state(params, (1, 1), torch.device("cpu"), torch.float64)
    trace: dict[str, list[float]] = {"v": [], "i": [], "a": [], "z": []}
    for x in currents:
        state = neuron_step(torch.tensor([[x]], dtype=torch.float64), state, params, NO_SURROGATE)
        for name in trace:
            value = getattr(state, name)
            if value is not None:
                trace[name].append(value.item())
    return trace


def test_leaky_trace_by_hand():
    trace = run_trace(StepCoefficients("leaky", mem_decay=0.5), [1.5, 0.0, 0.5, 0.8])
    assert trace["v"] == pytest.approx([1.5, 0.75 - 1.0, -0.125 + 0.5, 0.1875 + 0.8])
    assert trace["z"] == [1.0, 0.0, 0.0, 0.0]


def test_leaky_reset_to_zero():
    trace = run_trace(StepCoefficients("leaky", mem_decay=0.5, reset="zero"), [1.5, 0.4, 0.2])
    assert trace["v"] == pytest.approx([1.5, 0.4, 0.4])
    assert trace["z"] == [1.0, 0.0, 0.0]


def test_synaptic_trace_by_hand():
    params = StepCoefficients("synaptic", mem_decay=0.8, syn_decay=0.5, threshold=10.0)
    trace = run_trace(params, [1.0, 0.0, 0.0])
    assert trace["i"] == pytest.approx([1.0, 0.5, 0.25])
    assert trace["v"] == pytest.approx([1.0, 0.8 + 0.5, 1.04 + 0.25])


def test_alpha_neuron_has_the_alpha_kernel():
    decay = math.exp(-0.1)
    trace = run_trace(
        StepCoefficients("alpha", mem_decay=decay, threshold=100.0), [1.0] + [0.0] * 30
    )
    expected = [(t + 1) * decay**t for t in range(31)]
    assert trace["v"] == pytest.approx(expected)
    assert max(range(31), key=lambda t: trace["v"][t]) in (9, 10)


def test_alif_threshold_rises_after_a_spike():
    params = StepCoefficients("alif", mem_decay=0.0, adapt_decay=0.5, adapt_strength=2.0)
    trace = run_trace(params, [1.2, 1.5, 2.5, 0.0])
    assert trace["a"] == pytest.approx([0.0, 0.5, 0.25, 0.125 + 0.5])
    assert trace["v"] == pytest.approx([1.2, 0.5, 2.5, -1.0])
    assert trace["z"] == [1.0, 0.0, 1.0, 0.0]


def test_lapicque_is_the_euler_rc_circuit():
    dt, resistance, capacitance = 0.1, 2.0, 0.5
    params = StepCoefficients(
        "lapicque",
        mem_decay=1 - dt / (resistance * capacitance),
        input_gain=dt / capacitance,
        threshold=100.0,
    )
    trace = run_trace(params, [1.0, 1.0])
    assert trace["v"] == pytest.approx([0.2, 0.9 * 0.2 + 0.2])


def test_refractory_steps_block_spikes():
    params = StepCoefficients("leaky", mem_decay=0.0, refractory_steps=2)
    trace = run_trace(params, [2.0] * 6)
    assert trace["z"] == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("kind", "formula"),
    [
        ("fast_sigmoid", lambda x, k: 1 / (1 + k * abs(x)) ** 2),
        ("arctan", lambda x, k: (k / 2) / (1 + (math.pi * k * x / 2) ** 2)),
        ("triangle", lambda x, k: k * max(0.0, 1 - k * abs(x))),
    ],
)
def test_surrogate_gradients_follow_their_formulas(kind, formula):
    slope, dampening = 2.0, 0.3
    x = torch.tensor([-1.0, -0.3, 0.0, 0.2, 0.45, 2.0], dtype=torch.float64, requires_grad=True)
    z = spike(x, Surrogate(kind, slope, dampening))
    assert z.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    z.sum().backward()
    expected = [dampening * formula(value, slope) for value in x.tolist()]
    assert x.grad.tolist() == pytest.approx(expected)


def test_unknown_surrogate_is_rejected():
    with pytest.raises(ValueError, match="available: fast_sigmoid, arctan, triangle"):
        Surrogate("sigmoid")


def test_leaky_module_works_in_sequential():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(5, 7),
        Leaky(7, tau_mem=2.0, dt=1.0),
        nn.Linear(7, 3),
        Leaky(3, tau_mem=2.0, dt=1.0),
    )
    inputs = (torch.rand(12, 4, 5) < 0.5).float()
    out = net(inputs)
    assert out.shape == (12, 4, 3)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    hidden = net[1](net[0](inputs))
    params = net[1].step_params()
    state = initial_state(params, (4, 7), torch.device("cpu"), torch.float32)
    for t, current in enumerate(net[0](inputs)):
        state = neuron_step(current, state, params, NO_SURROGATE)
        assert torch.equal(state.z, hidden[t])


def test_recurrent_layer_equals_the_unrolled_loop():
    torch.manual_seed(1)
    neurons = SpikingNeurons(
        6, "alif", dt=1.0, tau_mem=5.0, tau_adapt=20.0, n_adaptive=3, dtype=torch.float64
    )
    layer = SpikingLayer(4, neurons, recurrent=True)
    layer.reset_parameters("normal", 0.5, 1.0)
    inputs = (torch.rand(30, 2, 4, dtype=torch.float64) < 0.4).double()
    out, _, _ = layer.run(inputs, layer.initial_state(2, inputs.device, inputs.dtype))
    params = neurons.step_params()
    state = initial_state(params, (2, 6), inputs.device, inputs.dtype)
    for t in range(30):
        current = inputs[t] @ layer.weight + state.z @ layer.recurrent_weight
        state = neuron_step(current, state, params, neurons.surrogate)
        assert torch.equal(out[t], state.z), t
    assert out.sum() > 0
    assert torch.equal(neurons.adapt_strength[:3], torch.zeros(3, dtype=torch.float64))


def test_delay_shifts_the_input_by_whole_steps():
    neurons = SpikingNeurons(1, "leaky", dt=1.0, tau_mem=1e-6, dtype=torch.float64)
    layer = SpikingLayer(1, neurons, delay=3)
    with torch.no_grad():
        layer.weight.fill_(2.0)
    inputs = torch.zeros(10, 1, 1, dtype=torch.float64)
    inputs[2] = 1.0
    state = layer.initial_state(1, inputs.device, inputs.dtype)
    first, state, _ = layer.run(inputs[:4], state)
    second, _, _ = layer.run(inputs[4:], state)
    spikes = torch.cat([first, second]).flatten().tolist()
    assert spikes == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]


def test_chunked_simulation_equals_one_chunk():
    times = 0.15 + 1.85 * torch.rand(4, 5, dtype=torch.float64)
    whole, hidden_whole = tiny_network(40, 100)(times)
    chunked, hidden_chunked = tiny_network(40, 7)(times)
    assert torch.equal(whole, chunked)
    assert torch.equal(hidden_whole[0], hidden_chunked[0])
    assert whole.sum() > 0


def test_gradients_flow_to_every_weight():
    times = 0.15 + 1.85 * torch.rand(4, 5, dtype=torch.float64)
    net = tiny_network(30, 9)
    scores, hidden = net(times)
    ReadoutLoss("cross_entropy", steps=30, rate_regularization=0.1).training_loss(
        scores, hidden, torch.tensor([0, 1, 2, 0])
    ).backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_latency_spike_train_uses_the_step_of_each_time():
    times = torch.tensor([[0.15, 0.25, 1.0, math.inf]], dtype=torch.float64)
    spikes = latency_spike_train(times, dt=0.1, start=0, length=12)
    steps = [spikes[:, 0, j].nonzero().flatten().tolist() for j in range(4)]
    assert steps == [[1], [2], [10], []]
    assert torch.equal(latency_spike_train(times, 0.1, 2, 3)[0], spikes[2])


def test_interpolated_latency_spikes_keep_their_time():
    times = torch.tensor([[0.15, 0.2, 1.03, math.inf]], dtype=torch.float64)
    spikes = interpolated_latency_spike_train(times, dt=0.1, start=0, length=15)[:, 0, :]
    steps = torch.arange(15, dtype=torch.float64)
    assert torch.allclose(spikes[:, :3].sum(0), torch.ones(3, dtype=torch.float64))
    centre = (steps.unsqueeze(1) * spikes[:, :3]).sum(0) * 0.1
    assert torch.allclose(centre, times[0, :3])
    assert spikes[1, 0] == pytest.approx(0.5) and spikes[2, 0] == pytest.approx(0.5)
    assert spikes[10, 2] == pytest.approx(0.7) and spikes[11, 2] == pytest.approx(0.3)
    assert torch.equal(spikes[:, 3], torch.zeros(15, dtype=torch.float64))
    on_grid = torch.tensor([[0.2, 0.5]], dtype=torch.float64)
    assert torch.allclose(
        interpolated_latency_spike_train(on_grid, 0.1, 0, 8),
        latency_spike_train(on_grid, 0.1, 0, 8),
    )
    chunk = interpolated_latency_spike_train(times, 0.1, 2, 3)
    assert torch.equal(chunk, interpolated_latency_spike_train(times, 0.1, 0, 15)[2:5])
    encoder = SpikeEncoder("latency", dt=0.1, interpolate=True)
    assert torch.equal(encoder(times, 0, 15, torch.Generator())[:, 0, :], spikes)


def test_rate_spike_train_statistics():
    intensities = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0], dtype=torch.float64)
    times = 2.0 - intensities * (2.0 - 0.15)
    generator = torch.Generator().manual_seed(3)
    spikes = rate_spike_train(times.expand(400, 5), 0.15, 2.0, 1.0, 100, generator)
    rates = spikes.mean(dim=(0, 1))
    assert rates[0] == 0 and rates[-1] == 1
    assert rates[1:4].tolist() == pytest.approx([0.1, 0.5, 0.9], abs=0.01)
    again = rate_spike_train(
        times.expand(400, 5), 0.15, 2.0, 1.0, 100, torch.Generator().manual_seed(3)
    )
    assert torch.equal(spikes, again)
    half = rate_spike_train(times.expand(400, 5), 0.15, 2.0, 0.5, 100, generator)
    assert half.mean(dim=(0, 1))[2].item() == pytest.approx(0.25, abs=0.01)


def test_random_codes_draw_on_the_cpu_unless_a_device_run_draws_on_its_device():
    times = 2.0 - torch.rand(6, 5, generator=torch.Generator().manual_seed(1)) * 1.85
    encoder = SpikeEncoder("rate", dt=0.1)
    evaluation = encoder.new_generator(torch.device("cpu"), EVAL_SEED)
    assert evaluation.device.type == "cpu"
    assert torch.equal(
        encoder(times, 0, 20, evaluation),
        encoder(times, 0, 20, torch.Generator().manual_seed(EVAL_SEED)),
    )
    shared = torch.Generator()
    assert encoder.training_generator(shared, torch.device("cpu"), 3) is shared
    for other in (SpikeEncoder("rate", draw_on="cpu"), SpikeEncoder("latency")):
        assert other.training_generator(shared, torch.device("cuda"), 3) is shared
    assert SpikeEncoder("rate", draw_on="cpu").new_generator(torch.device("cuda"), 0).device == (
        torch.device("cpu")
    )


def test_threshold_crossing_by_hand():
    intensities = torch.tensor([[0.0, 0.6, 0.6, 0.2, 0.9]], dtype=torch.float64)
    times = 2.0 - intensities * 1.85
    spikes = threshold_crossing_spike_train(times, 0.15, 2.0, 3, 0, 7)
    levels = [0.25, 0.5, 0.75]
    up = {(t, j) for t, j in spikes[:, 0, :3].nonzero().tolist()}
    down = {(t, j) for t, j in spikes[:, 0, 3:].nonzero().tolist()}
    assert up == {(1, 0), (1, 1), (4, 0), (4, 1), (4, 2)}
    assert down == {(3, 0), (3, 1)}
    assert spikes[5:].sum() == 0
    assert levels == pytest.approx([0.25, 0.5, 0.75])
    assert torch.equal(threshold_crossing_spike_train(times, 0.15, 2.0, 3, 3, 2), spikes[3:5])


def test_readouts():
    outputs = torch.tensor([[[0.0, 1.0]], [[1.0, 1.0]], [[0.0, 0.0]], [[1.0, 0.0]]])
    counts = Readout("spike_count", 0, 4, 1.0, 1.0)
    counts.add(outputs[:2], 0)
    counts.add(outputs[2:], 2)
    assert counts.scores().tolist() == [[2.0, 2.0]]
    window = Readout("spike_count", 2, 4, 1.0, 1.0)
    window.add(outputs, 0)
    assert window.scores().tolist() == [[1.0, 0.0]]
    first = Readout("first_spike", 0, 4, 0.5, 0.25)
    first.add(outputs, 0)
    assert first.scores().tolist() == [[-0.5 / 0.25, 0.0]]
    membrane = torch.tensor([[[0.2, -1.0]], [[0.1, 0.5]]], dtype=torch.float64)
    peak = Readout("max_membrane", 0, 2, 1.0, 1.0)
    peak.add(membrane, 0)
    assert peak.scores().tolist() == [[0.2, 0.5]]
    mean = Readout("mean_membrane", 0, 2, 1.0, 1.0)
    mean.add(membrane, 0)
    assert mean.scores()[0].tolist() == pytest.approx([0.15, -0.25])


def test_ties_are_never_counted_correct():
    scores = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 0.0]])
    assert predict_unique_max(scores).tolist() == [-1, 1, -1]


def test_rate_penalty_and_mse_count():
    counts = [torch.tensor([[2.0, 0.0], [4.0, 0.0]])]
    assert rate_penalty(counts, steps=10, target=0.1).item() == pytest.approx(
        ((0.3 - 0.1) ** 2 + 0.1**2) / 2
    )
    loss = ReadoutLoss("mse_count", window_steps=10, count_correct=0.8, count_wrong=0.2)
    scores = torch.tensor([[8.0, 2.0, 0.0]])
    assert loss.per_sample(scores, torch.tensor([0])).item() == pytest.approx(0.5 * 4)


MEMORY_SCRIPT = """
import resource, torch
from snnexp.data.encoding import SpikeEncoder
from snnexp.modules.neurons import SpikingNeurons
from snnexp.modules.stepped_layer import SpikingLayer
from snnexp.modules.time_stepped import TimeSteppedNetwork
torch.set_num_threads(1)
layers = [SpikingLayer(50, SpikingNeurons(400, "leaky", dt=1.0, tau_mem=20.0)),
          SpikingLayer(400, SpikingNeurons(10, "leaky", dt=1.0, tau_mem=20.0))]
net = TimeSteppedNetwork(layers, SpikeEncoder("rate", dt=1.0), steps={steps})
times = torch.rand(100, 50)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.no_grad():
    net(times)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def peak_growth_kib(steps: int) -> int:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT.format(steps=steps)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


def test_inference_memory_does_not_grow_with_steps():
    """2000 steps of a (100 x 400) layer would hold 2000 x 100 x 400 x 4 B = 320 MB of spikes
    if the whole sequence were kept; chunked inference keeps one chunk."""
    short, long = peak_growth_kib(100), peak_growth_kib(2000)
    assert long - short < 40 * 1024, (short, long)


def test_every_registered_neuron_model_is_its_own_module():
    """NEURON_MODELS is the registry: each name is a module of snnexp.functional.stepped whose
    MODEL carries that name; the config's model.neuron.type choices are these names and
    ``lsnn`` (the LSNN code's whole recurrent layer, snnexp.functional.lsnn, not a step model);
    an unknown name is refused with the list."""
    from snnexp.config.schema import NEURON_TYPES
    from snnexp.functional.stepped import NEURON_MODELS, step_model

    assert NEURON_TYPES == (*NEURON_MODELS, "lsnn")
    for name in NEURON_MODELS:
        model = step_model(name)
        assert model.name == name
        assert model.step.__module__.startswith("snnexp.functional.stepped.")
    assert step_model("alif").adaptive and step_model("synaptic").has_current
    with pytest.raises(ValueError, match="unknown neuron model 'izhikevich'; available: synaptic"):
        step_model("izhikevich")


def test_the_readme_neuron_model_example_plugs_in(monkeypatch):
    """A model module (here the README's ``my_leaky``) plus its name in NEURON_MODELS is all
    that SpikingNeurons needs: it integrates half of its input, with the configured reset."""
    import types

    from snnexp.functional import stepped
    from snnexp.functional.stepped.base import StepModel, fire, membrane_update

    def my_leaky_step(current, state, params, surrogate):
        v = membrane_update(state.v, 0.5 * current, state.z.detach(), params)
        return fire(state._replace(v=v), params, surrogate)

    module = types.ModuleType("snnexp.functional.stepped.my_leaky")
    module.MODEL = StepModel("my_leaky", my_leaky_step, "leaky, half the input gain")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(stepped, "NEURON_MODELS", (*stepped.NEURON_MODELS, "my_leaky"))
    stepped.step_model.cache_clear()
    try:
        neurons = SpikingNeurons(1, "my_leaky", dt=1.0, tau_mem=1e9, threshold=1.0)
        spikes = neurons(torch.tensor([[[0.8]], [[0.8]], [[0.8]]]))
    finally:
        stepped.step_model.cache_clear()
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0]  # v = 0.4, 0.8, 1.2
