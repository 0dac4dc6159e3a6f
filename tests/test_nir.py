"""NIR exchange: snnexp -> NIR -> snnexp round trips, snnTorch and norse as clients, the
refusals and the `snnexp nir` commands (optional extra interop: nir, snntorch, norse)."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir", reason="NIR support needs pip install 'snnexp[interop]'")

from snnexp.config import config_from_dict  # noqa: E402
from snnexp.nir.conventions import StepInputs, exact_step_gain, propagation  # noqa: E402
from snnexp.nir.export import NirExportError, export_network  # noqa: E402
from snnexp.nir.reader import NirImportError, import_graph, read_graph  # noqa: E402
from snnexp.nir.runs import load_graph_weights  # noqa: E402
from snnexp.run.build import build_network  # noqa: E402
from tests.cli_runs import invoke, train_run  # noqa: E402

DT = 0.05
STACK = {
    "dataset": {"name": "yin_yang", "encoding": {"type": "latency"}},
    "model": {
        "neuron": {"type": "leaky", "tau_mem": 1.0, "tau_syn": 0.5, "reset": "zero"},
        "dtype": "float64",
        "dt": DT,
        "sim_time": 3.0,
        "layer_sizes": [40, 3],
        "weight_init": "normal",
        "weight_mean": [1.0, 0.3],
        "weight_std": [1.5, 1.0],
        "bias_times": [[], []],
    },
    "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
}
CONV_BLOCKS = [
    {"type": "conv2d", "channels": 4, "kernel": 3, "padding": 1},
    {"type": "avg_pool2d", "kernel": 2},
    {"type": "neurons", "model": "synaptic", "per_neuron_tau": True},
    {"type": "conv2d", "channels": 6, "kernel": 3, "stride": 2, "groups": 2, "bias": False},
    {"type": "sum_pool2d", "kernel": 2},
    {"type": "neurons"},
    {"type": "flatten"},
    {"type": "linear", "features": 10},
    {"type": "neurons", "spiking": False},
]
DELAY_BLOCKS = [
    {"name": "a_in", "type": "linear", "features": 30, "bias": False},
    {"name": "a", "type": "neurons", "recurrent": True},
    {"name": "late", "type": "delay", "steps": 3},
    {"name": "b_in", "type": "linear", "features": 20, "inputs": ["late"]},
    {"name": "skip", "type": "linear", "features": 20, "inputs": [{"block": "a", "delay": 2}]},
    {"name": "b", "type": "neurons", "inputs": ["b_in", "skip"]},
    {"name": "drop", "type": "dropout", "p": 0.2},
    {"name": "out_in", "type": "linear", "features": 3, "bias": False},
    {"name": "out", "type": "neurons", "model": "synaptic"},
]


def _config(overrides: dict | None = None, blocks: list | None = None, dataset: dict | None = None):
    data = copy.deepcopy(STACK)
    data["model"].update(overrides or {})
    if blocks is not None:
        for key in ("layer_sizes", "weight_init", "weight_mean", "weight_std", "bias_times"):
            data["model"].pop(key)
        data["model"]["blocks"] = blocks
    if dataset is not None:
        data["dataset"] = dataset
    return config_from_dict(data)


def _network(cfg, scale: float = 1.0, seed: int = 1):
    """The network of ``cfg`` with weights scaled by ``scale`` (to spike) and per-neuron time
    constants spread over [tau, 2 tau]."""
    network = build_network(cfg, torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.mul_(scale)
        for name, buffer in network.named_buffers():
            if name.endswith(("tau_mem", "tau_syn")) and buffer.numel() > 1:
                buffer.mul_(1 + torch.rand(buffer.shape, generator=gen, dtype=buffer.dtype))
    return network.eval()


def _written_and_read(graph, tmp_path):
    path = tmp_path / "network.nir"
    nir.write(path, graph)
    return read_graph(path)


def _round_trip(cfg, network, tmp_path, **export):
    graph, _ = export_network(network, cfg.model.dt, **export)
    imported = import_graph(_written_and_read(graph, tmp_path), cfg.model.dt)
    data = {
        "dataset": {"name": cfg.dataset.name, "encoding": vars(cfg.dataset.encoding)},
        "model": {
            "neuron": {"type": "leaky", "reset": "zero"},
            "dtype": cfg.model.dtype,
            "dt": cfg.model.dt,
            "sim_time": cfg.model.sim_time,
            "readout": cfg.model.readout,
            "blocks": imported.blocks,
        },
        "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
    }
    copy_cfg = config_from_dict(data)
    twin = build_network(copy_cfg, torch.Generator().manual_seed(99))
    load_graph_weights(twin, imported)
    return twin.eval()


def _inputs(cfg, samples: int = 64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    if cfg.dataset.name == "yin_yang":
        return 0.15 + 1.85 * torch.rand(samples, 4, generator=gen, dtype=torch.float64)
    return 2.0 * torch.rand(samples, 256, generator=gen, dtype=torch.float64)


def _assert_same_spikes(network, twin, x):
    ours, theirs = network.record(x), twin.record(x)
    assert torch.equal(ours["scores"], theirs["scores"])
    spikes = [key for key in ours if key.startswith("spikes")]
    for key in spikes:
        assert torch.equal(ours[key], theirs[key]), key
    return sum(float(ours[key].sum()) for key in spikes)


@pytest.mark.parametrize("recurrent", [False, True])
def test_a_stack_round_trips_with_identical_spikes(tmp_path, recurrent):
    cfg = _config({"recurrent": [recurrent, False]})
    network = _network(cfg)
    twin = _round_trip(cfg, network, tmp_path)
    x = _inputs(cfg)
    assert _assert_same_spikes(network, twin, x) > 100
    recurrent_weights = [k for k in twin.state_dict() if k.endswith("recurrent_weight")]
    assert len(recurrent_weights) == int(recurrent)


def test_a_conv_graph_round_trips_with_identical_spikes(tmp_path):
    dataset = {"name": "16x16_mnist", "encoding": {"type": "direct"}}
    cfg = _config({"sim_time": 0.5, "readout": "max_membrane"}, CONV_BLOCKS, dataset)
    network = _network(cfg, scale=3.0)
    twin = _round_trip(cfg, network, tmp_path)
    assert _assert_same_spikes(network, twin, _inputs(cfg, 16)) > 100
    per_neuron = [
        k for k, v in twin.state_dict().items() if k.endswith("tau_mem") and v.numel() > 1
    ]
    assert len(per_neuron) == 1


def test_a_graph_with_delays_and_a_recurrent_population_round_trips(tmp_path):
    cfg = _config({"readout": "spike_count"}, DELAY_BLOCKS)
    network = _network(cfg, scale=4.0)
    graph, _ = export_network(network, DT)
    delays = {name: node for name, node in graph.nodes.items() if isinstance(node, nir.Delay)}
    assert {"late", "a_to_skip_delay"} <= set(delays)
    np.testing.assert_allclose(delays["late"].delay, 3 * 1e-4)
    assert isinstance(graph.nodes["a"], nir.NIRGraph)
    twin = _round_trip(cfg, network, tmp_path)
    assert _assert_same_spikes(network, twin, _inputs(cfg)) > 100


def test_time_constants_follow_the_euler_convention():
    cfg = _config({"neuron": {"type": "synaptic", "tau_mem": 1.0, "tau_syn": 0.5, "reset": "zero"}})
    graph, _ = export_network(_network(cfg), DT, dt=1e-3)
    node = graph.nodes["layer_0"]
    alpha, alpha_s = np.exp(-DT / 1.0), np.exp(-DT / 0.5)
    np.testing.assert_allclose(1 - 1e-3 / node.tau_mem, alpha, rtol=1e-12)
    np.testing.assert_allclose(1 - 1e-3 / node.tau_syn, alpha_s, rtol=1e-12)
    np.testing.assert_allclose(node.r, node.tau_mem / 1e-3)
    np.testing.assert_allclose(node.w_in, node.tau_syn / 1e-3)
    assert graph.metadata["dt"] == 1e-3 and graph.metadata["snnexp_dt"] == DT


@pytest.mark.parametrize(
    ("overrides", "feature", "approximation"),
    [
        ({"neuron": {"type": "leaky", "reset": "subtract"}}, "reset: subtract", "reset to zero"),
        (
            {"neuron": {"type": "leaky", "reset": "zero", "refractory_steps": 2}},
            "refractory",
            "none",
        ),
        ({"neuron": {"type": "alif", "reset": "zero"}}, "adaptive thresholds", "base threshold"),
        ({"bias_times": [[0.9], []]}, "bias spikes", None),
    ],
)
def test_what_nir_cannot_express_is_refused_or_approximated(overrides, feature, approximation):
    network = _network(_config(overrides))
    with pytest.raises(NirExportError, match=feature) as error:
        export_network(network, DT)
    assert "NIR cannot express" in str(error.value)
    if approximation is None:
        with pytest.raises(NirExportError, match=feature):
            export_network(network, DT, approximate=True)
        return
    assert "--approximate" in str(error.value)
    graph, notes = export_network(network, DT, approximate=True)
    assert notes and approximation in notes[0]
    assert approximation in graph.metadata["approximations"]


def test_max_pooling_is_refused():
    blocks = [dict(CONV_BLOCKS[0]), {"type": "max_pool2d", "kernel": 2}, *CONV_BLOCKS[2:]]
    dataset = {"name": "16x16_mnist", "encoding": {"type": "direct"}}
    with pytest.raises(NirExportError, match="has type max_pool2d, which NIR cannot express"):
        export_network(_network(_config({"readout": "max_membrane"}, blocks, dataset)), DT)


def test_an_ann_is_refused_with_the_way_to_convert_it():
    blocks = [{"type": "linear", "features": 10}, {"type": "neurons"}]
    cfg = config_from_dict(
        {
            "dataset": {"name": "16x16_mnist", "encoding": {"type": "latency"}},
            "model": {"blocks": blocks, "dtype": "float32"},
            "learning": {"rule": "ann", "loss": {"type": "cross_entropy"}},
        }
    )
    with pytest.raises(NirExportError, match=r"convert an ANN first \(snnexp convert"):
        export_network(build_network(cfg), 1.0)


@pytest.mark.parametrize("tau_syn, tau_mem", [(1.0, 1.0), (0.5, 1.0)], ids=["ET", "DT"])
def test_euler_steps_of_an_exported_first_spike_neuron_are_exact_at_step_boundaries(
    tau_syn, tau_mem
):
    """A CubaLIF stepped as norse does (the input added to I, then an Euler step of v with
    I), with the exported r (exact_step_gain) and spikes at arbitrary times fed as
    StepInputs: the membrane potential at every step boundary after the spikes' steps equals
    the continuous neuron's v(t) = r sum_j w_j kappa(t - t_j)."""
    dt, r, steps = 1e-2, 1.7, 300
    times = np.array([0.0123, 0.3, 0.4567, 0.9999])
    weights = np.array([0.8, -0.3, 1.1, 0.5])
    alpha_s, alpha_m = np.exp(-dt / tau_syn), np.exp(-dt / tau_mem)
    gain = exact_step_gain(tau_syn, tau_mem, dt)
    spikes = StepInputs.of(times, dt, tau_syn, tau_mem)
    current = potential = 0.0
    stepped = []
    for k in range(steps):
        current = alpha_s * current + weights @ spikes.at(k)
        potential = alpha_m * potential + (1 - alpha_m) * r * gain * current
        stepped.append(potential)
    ends = (np.arange(steps) + 1) * dt
    elapsed = ends[:, None] - times[None, :]
    kernel = np.where(elapsed > 0, propagation(np.maximum(elapsed, 0), tau_syn, tau_mem), 0)
    exact = r * (kernel @ weights)
    after = ends > (np.floor(times.max() / dt) + 2) * dt - 1e-12
    np.testing.assert_allclose(np.array(stepped)[after], exact[after], rtol=1e-10, atol=1e-12)


def test_the_published_yin_yang_network_runs_in_norse(tmp_path, reference_dir):
    """The published ET network (exact first-spike times) as CubaLIF neurons that fire once,
    its bias spikes as input channels, simulated by norse at dt = 1e-3 (each input spike split
    between the two steps around its time, StepInputs; a spike in step k read as (k + 1) dt):
    the same predicted class for >= 99 % of the test samples and first-spike times within 2 dt
    of the exact ones for >= 99 % of the label neurons that fire (measured: 100 % and 99.4 %)."""
    norse = pytest.importorskip("norse.torch", reason="the norse client test needs norse")
    from snnexp.config import load_config

    ref = reference_dir("yin_yang_et_300epochs")
    cfg = load_config(ref / "original_config.yaml")
    network = build_network(cfg, training=False)
    with torch.no_grad():
        for k, layer in enumerate(network.layers):
            layer.weight.copy_(torch.from_numpy(np.load(ref / f"weights_layer{k}.npy")))
    inputs = torch.from_numpy(np.load(ref / "test_input_times.npy"))
    exact = network(inputs)[0].detach().numpy()
    dt = 1e-3
    graph, _ = export_network(network, cfg.model.dt, dt=dt)
    graph = _written_and_read(graph, tmp_path)
    bias = np.asarray(graph.metadata["bias_spike_times"])
    times = np.concatenate([inputs.numpy(), np.broadcast_to(bias, (len(inputs), len(bias)))], 1)
    neuron = cfg.model.neuron
    spikes = StepInputs.of(times, dt, neuron.tau_syn, neuron.tau_mem)
    module = norse.from_nir(graph, dt=dt)
    first = np.full(exact.shape, np.inf)
    state = None
    with torch.no_grad():
        for k in range(round(cfg.model.sim_time / dt)):
            _, state = module(torch.from_numpy(spikes.at(k)).float(), state)
            fired = state.cache["layer_1"].numpy() > 0
            first[fired & np.isinf(first)] = (k + 1) * dt

    def predicted(times):
        return np.where(np.isfinite(times.min(1)), times.argmin(1), -1)

    assert (predicted(first) == predicted(exact)).mean() >= 0.99
    both = np.isfinite(exact) & np.isfinite(first)
    assert both.sum() >= 0.99 * np.isfinite(exact).sum()
    assert (np.abs(first[both] - exact[both]) <= 2 * dt).mean() >= 0.99


def test_import_names_what_snnexp_cannot_hold(tmp_path):
    cfg = _config()
    graph, _ = export_network(_network(cfg), DT)
    with pytest.raises(NirImportError, match=r"r = .* does not follow .* check --dt"):
        import_graph(graph, DT, dt=1e-3)
    graph.nodes["layer_0"].v_leak = np.full(40, 0.5)
    with pytest.raises(NirImportError, match="v_leak must be 0"):
        import_graph(graph, DT)


def test_a_recurrent_bias_is_refused_not_dropped():
    cfg = _config({"recurrent": [True, False]})
    graph, _ = export_network(_network(cfg), DT)
    synapse = graph.nodes["layer_0"].nodes["w_rec"]
    graph.nodes["layer_0"].nodes["w_rec"] = nir.Affine(synapse.weight, np.full(40, 0.1))
    with pytest.raises(NirImportError, match="recurrent synapse has a bias"):
        import_graph(graph, DT)


def _trained(tmp_path, model: str):
    """A 4-20-3 network of ``model`` neurons (reset to zero) trained for two epochs by snnexp:
    its config and network, in float32 as the clients compute."""
    from snnexp.run.inference import load_saved_network

    neuron = {"type": model, "tau_mem": 1.0, "tau_syn": 0.5, "reset": "zero"}
    overrides = {
        "model": {"neuron": neuron, "bias_times": [[], []], "dtype": "float32", "dt": DT},
        "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
        "training": {"epochs": 2, "savepoints": []},
    }
    saved = load_saved_network(train_run(tmp_path, overrides, results=model), device="cpu")
    return saved.cfg, saved.model.eval()


def _client_agreement(tmp_path, model, load, **export) -> tuple[float, float]:
    """The fraction of (step, sample, neuron) entries of the label layer where the client module
    ``load(graph)``, fed snnexp's input spikes step by step (the graph written to a file and
    read back, as a user would), spikes as snnexp does; and snnexp's spike count."""
    cfg, network = _trained(tmp_path, model)
    graph, _ = export_network(network, cfg.model.dt, **export)
    module = load(_written_and_read(graph, tmp_path))
    recorded = network.record(_inputs(cfg, 128).float())
    state, outputs = None, []
    with torch.no_grad():
        for spikes in recorded["input"]:
            out, state = module(spikes, state)
            outputs.append(out)
    ours, theirs = recorded["spikes_1"], torch.stack(outputs)
    return float((ours == theirs).float().mean()), float(ours.sum())


@pytest.mark.parametrize("model", ["leaky", "synaptic"])
def test_snntorch_reads_a_trained_network_spike_for_spike(tmp_path, model):
    pytest.importorskip("snntorch", reason="the snnTorch client test needs snntorch")
    from snntorch.import_nir import import_from_nir

    agreement, spikes = _client_agreement(tmp_path, model, import_from_nir)
    assert spikes > 1000
    assert agreement >= 0.999


@pytest.mark.parametrize(("model", "leaky_as"), [("synaptic", "lif"), ("leaky", "cubalif")])
def test_norse_reads_a_trained_network_spike_for_spike(tmp_path, model, leaky_as):
    pytest.importorskip("norse", reason="the norse client test needs norse")
    import norse.torch

    def load(graph):
        return norse.torch.from_nir(graph, dt=1e-4)

    agreement, spikes = _client_agreement(tmp_path, model, load, leaky_as=leaky_as)
    assert spikes > 1000
    assert agreement >= 0.999


def test_a_network_exported_by_snntorch_imports_with_its_spikes(tmp_path):
    """snnTorch -> NIR -> snnexp: Leaky neurons with reset to zero (what NIR expresses) and
    biases. Per-neuron beta and threshold work around snnTorch's exporter, whose scalar
    parameters fail the nir package's type check."""
    snn = pytest.importorskip("snntorch", reason="the snnTorch client test needs snntorch")
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)

    def leaky(n: int, beta: float, output: bool = False):
        return snn.Leaky(
            beta=torch.full((n,), beta),
            threshold=torch.ones(n),
            reset_mechanism="zero",
            init_hidden=True,
            output=output,
        )

    theirs = torch.nn.Sequential(
        torch.nn.Linear(4, 30), leaky(30, 0.9), torch.nn.Linear(30, 3), leaky(3, 0.8, True)
    )
    with torch.no_grad():
        theirs[0].weight.mul_(3)
        theirs[2].weight.mul_(3)
    graph = _written_and_read(export_to_nir(theirs, torch.zeros(4)), tmp_path)
    imported = import_graph(graph, DT)
    cfg = _config({"dtype": "float32", "readout": "spike_count"}, imported.blocks)
    ours = build_network(cfg)
    load_graph_weights(ours, imported)
    recorded = ours.eval().record(_inputs(cfg, 128).float())
    utils.reset(theirs)
    with torch.no_grad():
        spikes = torch.stack([theirs(x)[0] for x in recorded["input"]])
    assert recorded["spikes_1"].sum() > 500
    assert torch.equal(recorded["spikes_1"], spikes)


def _tiny_bptt(reset: str) -> dict:
    """Overrides of the tiny CLI config: a BPTT stack of leaky neurons with ``reset``, no bias
    spikes, one epoch."""
    return {
        "model": {"neuron": {"type": "leaky", "reset": reset}, "bias_times": [[], []]},
        "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
        "training": {"epochs": 1, "savepoints": []},
    }


def test_nir_export_and_import_commands_keep_the_test_accuracy(tmp_path):
    overrides = _tiny_bptt("zero")
    run_dir = train_run(tmp_path, overrides)
    path = tmp_path / "tiny.nir"
    exported = invoke("nir", "export", run_dir, path)
    assert exported.exit_code == 0, exported.output
    assert "for simulators of step dt = 0.0001" in exported.output
    config = run_dir / "config.yaml"
    imported = invoke("nir", "import", path, "--config", config, "--results-dir", tmp_path / "nir")
    assert imported.exit_code == 0, imported.output
    (copy_dir,) = (tmp_path / "nir").iterdir()
    original = invoke("inference", run_dir)
    again = invoke("inference", copy_dir)
    accuracy = [line.split("|")[-1] for line in original.output.splitlines() if "accuracy" in line]
    assert accuracy and accuracy[-1] in again.output
    continued = invoke("continue", copy_dir, "--quiet")
    assert continued.exit_code == 0, continued.output


def test_training_starts_from_a_nir_graph_with_model_nir(tmp_path):
    overrides = _tiny_bptt("zero")
    run_dir = train_run(tmp_path, overrides, results="first")
    path = tmp_path / "tiny.nir"
    assert invoke("nir", "export", run_dir, path).exit_code == 0
    again = train_run(
        tmp_path, {**overrides, "model": {**overrides["model"], "nir": str(path)}}, "second"
    )
    first = torch.load(run_dir / "epoch_1" / "checkpoint.pt", weights_only=True)["model"]
    start = torch.load(again / "epoch_0" / "checkpoint.pt", weights_only=True)["model"]
    assert torch.equal(start["blocks.layer_0_weights.weight"], first["layers.0.weight"])
    assert "nir:" in (again / "config.yaml").read_text()


def test_a_config_for_another_input_is_refused(tmp_path):
    cfg = _config()
    graph, _ = export_network(_network(cfg), DT)
    path = tmp_path / "network.nir"
    nir.write(path, graph)
    from tests.cli_runs import write_config

    config = write_config(
        tmp_path,
        {
            "dataset": {"name": "16x16_mnist", "encoding": {"type": "direct"}},
            "model": {"n_inputs": 256, "layer_sizes": [20, 10], "bias_times": [[], []]},
            "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
        },
    )
    result = invoke("nir", "import", path, "--config", config, "--results-dir", tmp_path / "r")
    assert result.exit_code == 1
    assert "input has shape [4]" in result.output and "Traceback" not in result.output


def test_without_the_nir_package_the_commands_name_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)
    result = invoke("nir", "export", tmp_path, tmp_path / "x.nir")
    assert result.exit_code == 1
    assert "pip install 'snnexp[interop]'" in result.output and "Traceback" not in result.output


def test_export_refuses_a_subtractive_reset_unless_approximate(tmp_path):
    overrides = _tiny_bptt("subtract")
    run_dir = train_run(tmp_path, overrides)
    path = tmp_path / "tiny.nir"
    refused = invoke("nir", "export", run_dir, path)
    assert refused.exit_code == 1 and not path.exists()
    assert "reset: subtract, which NIR cannot express; --approximate" in refused.output
    approximated = invoke("nir", "export", run_dir, path, "--approximate")
    assert approximated.exit_code == 0, approximated.output
    assert "approximated: layer 0: reset: subtract written as reset to zero" in approximated.output
    assert "reset to zero" in str(read_graph(path).metadata["approximations"])
