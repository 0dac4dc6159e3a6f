"""Semantic checks of a parsed config: enumerations, ranges, orders, per-layer lengths, the
dataset's shape and what each learning rule needs. Each check records its problems; a key whose
value could not be read is not checked again."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from snnexp.choices import FIRST_SPIKE_BLOCK, READOUTS, RESETS
from snnexp.config.keys import value_at
from snnexp.config.problems import Problems, close_match, counted
from snnexp.config.schema import (
    BIAS_SYNAPSES,
    DATASET_SHAPES,
    DEVICES,
    DRAW_ON,
    DTYPES,
    ENCODINGS,
    FIRST_SPIKE_TAU_RATIOS,
    LOSS_TYPES,
    LSNN_NEURON,
    NEURON_TYPES,
    OPTIMIZER_TYPES,
    OUTPUT_LAYERS,
    RATE_REDUCTIONS,
    REWIRING_INITS,
    RULES,
    SCHEDULER_INTERVALS,
    SCHEDULER_TYPES,
    SCOPES,
    SEQUENCE_ENCODINGS,
    SEQUENCE_LENGTH,
    SEQUENTIAL_DATASET,
    SIGN_MODES,
    SIMULATORS,
    SURROGATES,
    TIME_STEPPED_RULES,
    WEIGHT_INITS,
    ExperimentConfig,
    n_steps,
)
from snnexp.rules import LEARNING_RULES

if TYPE_CHECKING:
    from snnexp.graph.spec import GraphSpec

# validation


def _is_positive(value: float) -> bool:
    """value > 0."""
    return value > 0


def _is_non_negative(value: float) -> bool:
    """value >= 0."""
    return value >= 0


def _is_fraction(value: float) -> bool:
    """0 <= value <= 1."""
    return 0 <= value <= 1


def _is_connectivity(value: float) -> bool:
    """0 < value <= 1."""
    return 0 < value <= 1


def _is_seed(value: float) -> bool:
    """A seed numpy and torch accept."""
    return 0 <= value < 2**32


_ENUMS: tuple[tuple[str, Sequence[str]], ...] = (
    ("dataset.name", tuple(DATASET_SHAPES)),
    ("model.dtype", DTYPES),
    ("model.simulator", SIMULATORS),
    ("learning.rule", RULES),
    ("learning.loss.type", LOSS_TYPES),
    ("learning.optimizer.type", OPTIMIZER_TYPES),
    ("learning.lr_scheduler.type", SCHEDULER_TYPES),
    ("learning.lr_scheduler.interval", SCHEDULER_INTERVALS),
    ("learning.loss.rate_reduction", RATE_REDUCTIONS),
    ("training.device", DEVICES),
    ("dataset.encoding.type", ENCODINGS),
    ("dataset.encoding.draw_on", DRAW_ON),
    ("model.neuron.type", NEURON_TYPES),
    ("model.neuron.reset", RESETS),
    ("model.weight_init", WEIGHT_INITS),
    ("model.output", OUTPUT_LAYERS),
    ("model.readout", READOUTS),
    ("learning.surrogate.type", SURROGATES),
    ("learning.rewiring.signs", SIGN_MODES),
    ("learning.rewiring.scope", SCOPES),
    ("learning.rewiring.bias_synapses", BIAS_SYNAPSES),
    ("learning.rewiring.init", REWIRING_INITS),
)
_POSITIVE = (
    "dataset.train_size",
    "dataset.val_size",
    "dataset.test_size",
    "model.neuron.tau_syn",
    "model.neuron.tau_mem",
    "model.neuron.g_leak",
    "model.n_inputs",
    "model.layer_sizes",
    "model.dt",
    "model.sim_time",
    "learning.loss.xi",
    "learning.loss.beta",
    "learning.optimizer.lr",
    "learning.lr_scheduler.step_size",
    "learning.lr_scheduler.gamma",
    "learning.lr_scheduler.milestones",
    "training.epochs",
    "training.batch_size",
    "training.batch_size_eval",
    "training.log_every",
    "training.max_dw_norm",
    "dataset.encoding.thresholds",
    "model.neuron.tau_adapt",
    "model.neuron.resistance",
    "model.neuron.capacitance",
    "model.readout_steps",
    "model.readout_tau",
    "model.synaptic_delays",
    "training.validate_every",
    "learning.surrogate.slope",
)
_NON_NEGATIVE = (
    "model.weight_std",
    "learning.loss.alpha",
    "learning.optimizer.momentum",
    "training.weight_bumping.value",
    "training.input_noise.std",
    "training.checkpoint_minutes",
    "dataset.encoding.rate_gain",
    "dataset.encoding.cue_steps",
    "model.neuron.refractory_steps",
    "model.neuron.adapt_strength",
    "model.adaptive_neurons",
    "model.delays",
    "learning.surrogate.dampening",
    "learning.loss.count_correct",
    "learning.loss.count_wrong",
    "learning.loss.rate_regularization",
    "learning.loss.target_rate",
    "learning.rewiring.l1",
    "learning.rewiring.temperature",
)
_SEEDS = (
    "dataset.train_seed",
    "dataset.val_seed",
    "dataset.test_seed",
    "training.seeds.torch",
    "training.seeds.numpy",
)
_RANGES: tuple[tuple[str, Callable[[float], bool], str], ...] = (
    *((path, _is_positive, "> 0") for path in _POSITIVE),
    *((path, _is_non_negative, ">= 0") for path in _NON_NEGATIVE),
    *((path, _is_seed, "in 0 .. 2**32 - 1") for path in _SEEDS),
    ("training.weight_bumping.max_missing", _is_fraction, "between 0 and 1"),
    ("learning.rewiring.connectivity", _is_connectivity, "in (0, 1]"),
    ("learning.rewiring.excitatory_fraction", _is_fraction, "between 0 and 1"),
)
_PER_LAYER = (
    "model.weight_mean",
    "model.weight_std",
    "model.bias_times",
    "training.weight_bumping.max_missing",
    "model.recurrent",
    "model.delays",
)


def _items(value: Any) -> Iterator[tuple[str, Any]]:
    """(index suffix, item) for each list item, or ("", value) for a scalar."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield f"[{index}]", item
    else:
        yield "", value


def validate(cfg: ExperimentConfig, problems: Problems) -> None:
    """Record every semantic problem of a parsed config (values that could be read)."""
    _check_name(cfg, problems)
    _check_enums(cfg, problems)
    _check_ranges(cfg, problems)
    _check_order(cfg, problems)
    _check_savepoints(cfg, problems)
    _check_scheduler(cfg, problems)
    _check_layer_lengths(cfg, problems)
    _check_dataset_shape(cfg, problems)
    _check_tau_ratio(cfg, problems)
    _check_rule_fit(cfg, problems)
    _check_blocks(cfg, problems)


def _check_name(cfg: ExperimentConfig, problems: Problems) -> None:
    """The name becomes part of a folder name: non-empty, no path separators."""
    name = cfg.name
    if name is not None and (not name.strip() or "/" in name or "\\" in name):
        problems.add("name", f"must be a non-empty name without '/' or '\\', got {name!r}")


def _check_enums(cfg: ExperimentConfig, problems: Problems) -> None:
    """Keys with a fixed set of values."""
    for path, choices in _ENUMS:
        value = value_at(cfg, path)
        if problems.usable(path) and value not in choices:
            options = ", ".join(repr(choice) for choice in choices)
            close = close_match(value, choices)
            hint = f"; did you mean {close!r}?" if close else ""
            problems.add(path, f"expected one of {options}, got {value!r}{hint}")


def _check_ranges(cfg: ExperimentConfig, problems: Problems) -> None:
    """Numeric bounds of single values (each item of a list)."""
    for path, ok, rule in _RANGES:
        if not problems.usable(path):
            continue
        for where, value in _items(value_at(cfg, path)):
            if value is not None and not ok(value):
                problems.add(path + where, f"must be {rule}, got {value}")


def _check_order(cfg: ExperimentConfig, problems: Problems) -> None:
    """Pairs of values that must be ordered."""
    pairs = (
        ("dataset.encoding.t_early", "dataset.encoding.t_late", "later than"),
        ("model.neuron.leak", "model.neuron.threshold", "above"),
        ("model.dt", "model.sim_time", "longer than"),
    )
    for low_path, high_path, relation in pairs:
        if not problems.usable(low_path, high_path):
            continue
        low, high = value_at(cfg, low_path), value_at(cfg, high_path)
        if not low < high:
            problems.add(
                high_path, f"must be {relation} {problems.name(low_path)} ({low}), got {high}"
            )


def _check_savepoints(cfg: ExperimentConfig, problems: Problems) -> None:
    """Savepoints are epochs within 1..epochs."""
    if not problems.usable("training.savepoints", "training.epochs"):
        return
    epochs = cfg.training.epochs
    for index, epoch in enumerate(cfg.training.savepoints):
        if not 1 <= epoch <= epochs:
            problems.add(
                f"training.savepoints[{index}]",
                f"must be an epoch in 1..{epochs} ({problems.name('training.epochs')}), "
                f"got {epoch}",
            )


def _check_scheduler(cfg: ExperimentConfig, problems: Problems) -> None:
    """MultiStepLR without milestones would silently keep the rate constant."""
    scheduler = cfg.learning.lr_scheduler
    paths = ("learning.lr_scheduler.type", "learning.lr_scheduler.milestones")
    if problems.usable(*paths) and scheduler.type == "MultiStepLR" and not scheduler.milestones:
        problems.add(paths[1], "MultiStepLR needs at least one milestone epoch, e.g. [100, 200]")


def _check_layer_lengths(cfg: ExperimentConfig, problems: Problems) -> None:
    """Per-layer lists have one entry per layer (of a stack, not a graph of blocks)."""
    if not problems.usable("model.layer_sizes") or cfg.model.blocks:
        return
    n_layers = len(cfg.model.layer_sizes)
    sizes_name = problems.name("model.layer_sizes")
    if n_layers == 0:
        problems.add("model.layer_sizes", "needs at least one layer, e.g. [120, 3]")
        return
    for path in _PER_LAYER:
        if not problems.usable(path):
            continue
        count = len(value_at(cfg, path))
        if count != n_layers:
            problems.add(
                path,
                f"has {counted(count, 'entry', 'entries')} but {sizes_name} has "
                f"{counted(n_layers, 'layer', 'layers')}; give one entry per layer",
            )


def _check_dataset_shape(cfg: ExperimentConfig, problems: Problems) -> None:
    """The input count and the label layer match the dataset."""
    dataset = cfg.dataset.name
    if not problems.usable("dataset.name") or dataset not in DATASET_SHAPES or cfg.model.blocks:
        return
    n_inputs, n_classes = DATASET_SHAPES[dataset]
    if dataset == SEQUENTIAL_DATASET and problems.usable("dataset.encoding.thresholds"):
        n_inputs = 2 * cfg.dataset.encoding.thresholds
    if problems.usable("model.n_inputs") and cfg.model.n_inputs != n_inputs:
        problems.note(
            f"{problems.name('model.n_inputs')} is {cfg.model.n_inputs} but dataset "
            f"'{dataset}' has {n_inputs} inputs; set it to {n_inputs}"
        )
    sizes = cfg.model.layer_sizes
    if problems.usable("model.layer_sizes") and sizes and sizes[-1] != n_classes:
        problems.note(
            f"the last entry of {problems.name('model.layer_sizes')} is {sizes[-1]} but dataset "
            f"'{dataset}' has {n_classes} classes; the label layer needs {n_classes} neurons"
        )


def _check_tau_ratio(cfg: ExperimentConfig, problems: Problems) -> None:
    """Exact first-spike rules hold only for their tau_mem / tau_syn ratio."""
    rule = cfg.learning.rule
    needed = FIRST_SPIKE_TAU_RATIOS.get(rule)
    neuron = cfg.model.neuron
    paths = ("learning.rule", "model.neuron.tau_syn", "model.neuron.tau_mem")
    if needed is None or not problems.usable(*paths) or neuron.tau_syn <= 0:
        return
    ratio = neuron.tau_mem / neuron.tau_syn
    if math.isclose(ratio, needed, rel_tol=1e-9):
        return
    relation = "tau_mem = tau_syn" if needed == 1 else f"tau_mem = {needed:g} tau_syn"
    supported = " and ".join(
        f"ratio {value:g} ({name})" for name, value in FIRST_SPIKE_TAU_RATIOS.items()
    )
    problems.note(
        f"learning.rule '{rule}' needs {relation} (ratio {needed:g}); got tau_mem/tau_syn = "
        f"{ratio:.10g}. Exact first-spike learning supports {supported}."
    )


def _check_rule_fit(cfg: ExperimentConfig, problems: Problems) -> None:
    """Settings that only one family of rules (first-spike or time-stepped) can use."""
    rule = cfg.learning.rule
    if not problems.usable("learning.rule") or rule not in RULES:
        return
    spec = LEARNING_RULES[rule]
    rewiring = cfg.learning.rewiring
    if spec.rewiring and problems.usable("learning.rewiring") and rewiring.connectivity is None:
        problems.add(
            "learning.rewiring.connectivity",
            f"learning.rule {rule!r} (BPTT with rewiring) needs a connectivity fraction, "
            "e.g. 0.1; or use rule bptt for a dense network",
        )
    balanced = rewiring.init in ("balanced", "lsnn")
    if problems.usable("learning.rewiring") and balanced and rewiring.signs == "free":
        problems.add(
            "learning.rewiring.init",
            f"{rewiring.init!r} balances excitatory against inhibitory synapses and needs "
            "learning.rewiring.signs: dale or lsnn (or use init: layer)",
        )
    neuron = cfg.model.neuron.type
    if problems.usable("learning.rewiring", "model.neuron.type") and (
        rewiring.signs == "lsnn" and neuron != LSNN_NEURON
    ):
        problems.add(
            "learning.rewiring.signs",
            "'lsnn' gives every neuron of an LSNN network one sign in all the matrices it feeds "
            f"and needs model.neuron.type: {LSNN_NEURON}; use dale for other networks",
        )
    if spec.time_stepped:
        _check_time_stepped(cfg, problems)
        return
    if spec.analog:
        _check_analog(cfg, problems)
        return
    family = f"time-stepped rules ({', '.join(TIME_STEPPED_RULES)})"
    misfits = (
        ("learning.loss.type", spec.losses),
        ("model.neuron.type", ("synaptic",)),
        ("dataset.encoding.type", ("latency",)),
    )
    for path, allowed in misfits:
        value = value_at(cfg, path)
        if problems.usable(path) and value in dict(_ENUMS)[path] and value not in allowed:
            options = " or ".join(repr(item) for item in allowed)
            problems.add(
                path,
                f"{value!r} is for {family}; learning.rule {rule!r} needs {options}",
            )
    if problems.usable("dataset.name") and cfg.dataset.name == SEQUENTIAL_DATASET:
        problems.add(
            "dataset.name",
            f"{SEQUENTIAL_DATASET!r} is presented pixel by pixel and needs a time-stepped rule "
            "(learning.rule: bptt); first-spike rules take mnist",
        )


def _check_time_stepped(cfg: ExperimentConfig, problems: Problems) -> None:
    """Consistency of a time-stepped (BPTT) network's config."""
    model, rule = cfg.model, cfg.learning.rule
    losses = LEARNING_RULES[rule].losses
    loss = cfg.learning.loss.type
    if loss in LOSS_TYPES and loss not in losses and problems.usable("learning.loss.type"):
        options = " or ".join(repr(item) for item in losses)
        problems.add(
            "learning.loss.type",
            f"{loss!r} is for first-spike rules; learning.rule {rule!r} needs {options}",
        )
    encoding = cfg.dataset.encoding.type
    interpolate = cfg.dataset.encoding.interpolate
    if problems.usable("dataset.encoding.interpolate") and interpolate and encoding != "latency":
        problems.add(
            "dataset.encoding.interpolate",
            f"splits latency spikes between steps; the {encoding!r} encoding has no spike times "
            "to split: set it to false or use dataset.encoding.type: latency",
        )
    graph = bool(model.blocks)
    if (
        problems.usable("model.bias_times")
        and any(model.bias_times)
        and encoding != "latency"
        and not graph
    ):
        problems.add(
            "model.bias_times",
            f"bias spikes go with latency-coded inputs, not {encoding!r} ones; set "
            "model.bias_times: []",
        )
    if problems.usable("model.output", "model.readout") and model.output == "membrane":
        if model.readout in ("spike_count", "first_spike") and not graph:
            problems.add(
                "model.readout",
                f"{model.readout!r} needs a spiking label layer (model.output: spiking); a "
                "membrane output is read as max_membrane, mean_membrane or final_membrane",
            )
    if not problems.usable("model.dt", "model.sim_time"):
        return
    steps = n_steps(model)
    if problems.usable("model.readout_steps") and (model.readout_steps or 0) > steps:
        problems.add(
            "model.readout_steps",
            f"is {model.readout_steps} but the simulation has only {steps} steps "
            "(model.sim_time / model.dt)",
        )
    neuron = model.neuron
    if neuron.type == "lapicque" and model.dt >= neuron.resistance * neuron.capacitance:
        problems.add(
            "model.dt",
            f"must be shorter than R C = {neuron.resistance * neuron.capacitance:g} "
            "(model.neuron.resistance x capacitance) for the lapicque neuron",
        )
    _check_adaptive(cfg, problems)
    _check_sequence(cfg, problems, steps)
    _check_lsnn(cfg, problems)


def _check_lsnn(cfg: ExperimentConfig, problems: Problems) -> None:
    """The LSNN network (model.neuron.type lsnn) and its read-out go together: one recurrent
    layer and the label layer, read out as filtered_linear; no graph of blocks."""
    model = cfg.model
    if not problems.usable("model.neuron.type", "model.readout", "model.layer_sizes"):
        return
    lsnn = model.neuron.type == LSNN_NEURON
    if lsnn != (model.readout == "filtered_linear"):
        problems.add(
            "model.readout",
            "the LSNN network (model.neuron.type: lsnn) and readout: filtered_linear go "
            f"together (got neuron type {model.neuron.type!r} with readout {model.readout!r})",
        )
    if not lsnn:
        return
    if model.blocks:
        problems.add("model.blocks", "are not used by the LSNN network (model.neuron.type: lsnn)")
    if len(model.layer_sizes) != 2:
        problems.add(
            "model.layer_sizes",
            f"has {counted(len(model.layer_sizes), 'layer', 'layers')}; the LSNN network has "
            "one recurrent layer and the read-out: [n, classes]",
        )


def _check_analog(cfg: ExperimentConfig, problems: Problems) -> None:
    """An ANN (learning.rule ann): the ReLU network of a feed-forward graph of blocks, fed the
    intensities that a latency (or direct) code stands for."""
    rule = cfg.learning.rule
    if problems.usable("model.blocks") and not cfg.model.blocks:
        problems.add(
            "model.blocks",
            f"learning.rule {rule!r} trains the ReLU network of a graph of blocks (conv2d, "
            "pooling, flatten, dropout, linear, neurons = ReLU, the last neurons block = the "
            "scores); give model.blocks, e.g. as in experiment_configs/mnist_lenet5_ann.yaml",
        )
    encoding = cfg.dataset.encoding.type
    if problems.usable("dataset.encoding.type") and encoding not in ("latency", "direct"):
        problems.add(
            "dataset.encoding.type",
            f"an ANN reads the intensities a latency code stands for, not {encoding!r} spikes; "
            "use latency or direct",
        )
    if problems.usable("dataset.name") and cfg.dataset.name == SEQUENTIAL_DATASET:
        problems.add(
            "dataset.name",
            f"{SEQUENTIAL_DATASET!r} is presented pixel by pixel and needs a time-stepped rule; "
            "an ANN takes mnist",
        )
    loss = cfg.learning.loss
    if problems.usable("learning.loss.type") and loss.type != "cross_entropy":
        problems.add(
            "learning.loss.type",
            f"learning.rule {rule!r} trains with cross_entropy on the scores, not {loss.type!r}",
        )
    if problems.usable("learning.loss.rate_regularization") and loss.rate_regularization:
        problems.add(
            "learning.loss.rate_regularization",
            f"regularises firing rates; an ANN (learning.rule {rule!r}) has none: set it to 0",
        )


def _check_analog_graph(graph: GraphSpec, rule: str, problems: Problems) -> None:
    """An ANN's graph is feed-forward: no delays, no recurrent neurons blocks."""
    for name, block in graph.blocks.items():
        delayed = block.type == "delay" or any(edge.delay for edge in block.inputs)
        recurrent = block.type == "neurons" and block.params.get("recurrent")
        if delayed or recurrent:
            what = "a delay" if delayed else "recurrent: true"
            problems.add(
                "model.blocks",
                f"block {name!r} has {what}; learning.rule {rule!r} trains a feed-forward "
                "network computed once per sample, without time: remove it",
            )


def _check_adaptive(cfg: ExperimentConfig, problems: Problems) -> None:
    """adaptive_neurons: empty, or one count per layer within the layer's size."""
    model = cfg.model
    if (
        not model.adaptive_neurons
        or model.blocks
        or not problems.usable("model.adaptive_neurons", "model.layer_sizes")
    ):
        return
    if len(model.adaptive_neurons) != len(model.layer_sizes):
        problems.add(
            "model.adaptive_neurons",
            f"has {counted(len(model.adaptive_neurons), 'entry', 'entries')} but model.layer_sizes "
            f"has {counted(len(model.layer_sizes), 'layer', 'layers')}; give one count per layer "
            "or leave it empty (all neurons of alif layers adapt)",
        )
        return
    for k, (count, size) in enumerate(zip(model.adaptive_neurons, model.layer_sizes, strict=True)):
        if count > size:
            problems.add(f"model.adaptive_neurons[{k}]", f"is {count} but layer {k} has {size}")


def _check_sequence(cfg: ExperimentConfig, problems: Problems, steps: int) -> None:
    """Sequential MNIST and the threshold-crossing encoder belong together."""
    encoding, name = cfg.dataset.encoding.type, cfg.dataset.name
    if not problems.usable("dataset.name", "dataset.encoding.type"):
        return
    if (name == SEQUENTIAL_DATASET) != (encoding in SEQUENCE_ENCODINGS):
        problems.add(
            "dataset.encoding.type",
            f"dataset {SEQUENTIAL_DATASET!r} and the encodings "
            f"{' or '.join(map(repr, SEQUENCE_ENCODINGS))} go together "
            f"(got dataset {name!r} with encoding {encoding!r})",
        )
    elif name == SEQUENTIAL_DATASET and steps < SEQUENCE_LENGTH:
        problems.add(
            "model.sim_time",
            f"gives {steps} steps but sequential MNIST presents {SEQUENCE_LENGTH} pixels, one per "
            f"step; set model.sim_time >= {SEQUENCE_LENGTH} x model.dt (plus the read-out steps)",
        )


def _check_blocks(cfg: ExperimentConfig, problems: Problems) -> None:
    """A graph of blocks: one its rule trains (BPTT: stepped blocks; the exact first-spike
    rules: a sequential graph of first_spike blocks), valid for the dataset, with a read-out
    that fits its label layer."""
    model = cfg.model
    if not model.blocks or not problems.usable("model.blocks", "dataset", "model.neuron"):
        return
    rule = cfg.learning.rule
    if not problems.usable("learning.rule") or rule not in RULES:
        return
    spec = LEARNING_RULES[rule]
    if spec.rewiring:
        problems.add(
            "model.blocks",
            f"learning.rule {rule!r} (DEEP R) rewires a stack: give model.layer_sizes, or use "
            "learning.rule 'bptt' for a graph of blocks",
        )
        return
    if cfg.dataset.name not in DATASET_SHAPES:
        return
    from snnexp.graph.build import graph_spec
    from snnexp.graph.spec import GraphError

    try:
        graph = graph_spec(cfg)
    except GraphError as err:
        for message in err.problems:
            problems.note(message)
        return
    exact = [b for b in graph.blocks.values() if b.type == FIRST_SPIKE_BLOCK]
    if spec.analog and not exact:
        _check_analog_graph(graph, rule, problems)
        return
    if spec.scores and exact:
        problems.add(
            "model.blocks",
            f"{FIRST_SPIKE_BLOCK} blocks are exact first-spike layers, trained by learning.rule "
            f"first_spike_et or first_spike_dt, not {rule!r}; a BPTT graph uses linear and "
            "neurons blocks",
        )
        return
    if not spec.time_stepped:
        if not exact:
            problems.add(
                "model.blocks",
                f"learning.rule {rule!r} trains a sequential graph of {FIRST_SPIKE_BLOCK} blocks "
                "(e.g. [{type: first_spike, features: 120, weight_mean: 1.5, weight_std: 0.8}, "
                "...]); the other blocks are for learning.rule bptt",
            )
        return
    spiking = graph.blocks[graph.output].params["spiking"]
    if not spiking and model.readout in ("spike_count", "first_spike"):
        problems.add(
            "model.readout",
            f"{model.readout!r} needs a spiking label layer; the last block has spiking: false, "
            "which is read as max_membrane, mean_membrane or final_membrane",
        )
