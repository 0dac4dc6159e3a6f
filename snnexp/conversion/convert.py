"""Convert the ANN of a ``learning.rule: ann`` savepoint into a spiking graph and measure both.

The converted network is an ordinary BPTT run's network (:class:`~snnexp.graph.GraphNetwork`,
``learning.rule: bptt``): its config names the spiking blocks of :mod:`.codes`, its weights
are the ANN's scaled by :mod:`.normalize`, and ``snnexp continue`` fine-tunes it with BPTT.
One simulation of each split gives the SNN's accuracy after every step (the accuracy against
the number of simulated steps), the spikes of each layer per sample and the synaptic
operations per sample; the ANN's accuracy and multiply-accumulates per sample are measured
beside it. :func:`convert` does the computing; the command line writes the result folder.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from snnexp.config import ExperimentConfig, config_from_dict, config_to_dict
from snnexp.conversion.codes import CODES, Code, neuron_settings, spiking_blocks
from snnexp.conversion.normalize import activation_scale, weight_factors
from snnexp.data import EncodedSplit, load_split
from snnexp.errors import SnnexpError
from snnexp.graph.analog import AnalogNetwork
from snnexp.graph.build import graph_spec
from snnexp.graph.network import GraphNetwork
from snnexp.graph.spec import INPUT, Edge, GraphSpec
from snnexp.rules import ann
from snnexp.run.evaluate import EvalResult, evaluate
from snnexp.run.trainer import Trainer

FINE_TUNING_LR_FACTOR = 0.1
"""The converted run's learning rate is the ANN's times this (for BPTT fine-tuning)."""
EVALUATION_BATCH = 200
"""At most this many samples are simulated at once (a chunk of 100 steps of a convolutional
layer of LeNet-5 over 200 samples takes 0.9 GB)."""


@dataclass(frozen=True)
class ConversionSettings:
    """What ``snnexp convert`` was asked for (None: the code's default)."""

    code: str
    steps: int | None = None
    percentile: float = 99.9
    calibration_samples: int = 1000
    threshold: float | None = None
    splits: tuple[str, ...] = ("test",)

    @property
    def spike_code(self) -> Code:
        """The registered code."""
        return CODES[self.code]

    @property
    def n_steps(self) -> int:
        """Simulated steps."""
        return self.steps or self.spike_code.steps

    @property
    def theta(self) -> float:
        """The neurons' threshold."""
        return self.threshold if self.threshold is not None else self.spike_code.threshold


@dataclass
class SplitMeasures:
    """What one simulation of a split gives besides the usual evaluation."""

    accuracy_by_step: list[float]
    spikes_per_sample: dict[str, dict[str, float]]
    synops_per_sample: float


@dataclass
class Conversion:
    """A converted network in its trainer (ready to save as epoch 0) and the measurements."""

    trainer: Trainer
    scales: dict[str, float]
    ann_accuracy: dict[str, float]
    ann_macs_per_sample: float
    calibration_samples: int
    """The training samples the scales come from (at most the split's)."""
    measures: dict[str, SplitMeasures] = field(default_factory=dict)

    def summary(self, settings: ConversionSettings, source: Path, epoch: int) -> dict[str, Any]:
        """The contents of conversion.json."""
        return {
            "source": str(source.resolve()),
            "source_epoch": epoch,
            "code": settings.code,
            "steps": settings.n_steps,
            "threshold": settings.theta,
            "percentile": settings.percentile,
            "calibration_samples": self.calibration_samples,
            "scales": self.scales,
            "ann": {"accuracy": self.ann_accuracy, "macs_per_sample": self.ann_macs_per_sample},
            "snn": {
                split: {
                    "accuracy": measures.accuracy_by_step[-1],
                    "accuracy_by_step": measures.accuracy_by_step,
                    "spikes_per_sample": measures.spikes_per_sample,
                    "synops_per_sample": measures.synops_per_sample,
                }
                for split, measures in self.measures.items()
            },
        }


def chain_of(cfg: ExperimentConfig) -> list[dict[str, Any]]:
    """The blocks of an ANN run as given in its config (names resolved, ``inputs`` left out),
    checked to be a chain: each block reads the one before it."""
    if cfg.learning.rule != "ann":
        raise SnnexpError(
            f"this is a {cfg.learning.rule!r} run; snnexp convert takes the run of an ANN "
            "(learning.rule: ann, e.g. experiment_configs/mnist_lenet5_ann.yaml)"
        )
    spec = graph_spec(cfg)
    blocks = []
    previous = INPUT
    for given, (name, block) in zip(cfg.model.blocks, spec.blocks.items(), strict=True):
        if block.inputs != [Edge(previous)]:
            sources = ", ".join(edge.source for edge in block.inputs)
            raise SnnexpError(
                f"block {name!r} reads {sources}; snnexp convert takes a chain of blocks, each "
                "reading the one before it"
            )
        blocks.append({**{k: v for k, v in given.items() if k != "inputs"}, "name": name})
        previous = name
    return blocks


def check_clamping(blocks: list[dict[str, Any]], code: Code) -> None:
    """``ttfs_clamped`` converts an ANN with clamped ReLUs, the other codes ANNs without."""
    clamped = [
        block["name"] for block in blocks if block["type"] == "neurons" and block.get("clamp")
    ]
    if code.clamped and not clamped:
        raise SnnexpError(
            f"--code {code.name} converts an ANN trained with clamped ReLUs (clamp > 0 on its "
            "neurons blocks, e.g. experiment_configs/mnist_lenet5_ann_clamped.yaml); this ANN "
            "has plain ReLUs: use --code ttfs"
        )
    if clamped and not code.clamped:
        raise SnnexpError(
            f"the neurons blocks {', '.join(clamped)} of this ANN are clamped ReLUs, which "
            f"--code {code.name} does not reproduce; use --code ttfs_clamped"
        )


def spiking_config(ann_cfg: ExperimentConfig, settings: ConversionSettings) -> dict[str, Any]:
    """The config (as a dict) of the converted run: the ANN's dataset and training settings, the
    direct input, integrate-and-fire neurons, the code's blocks, the read-out at the last step
    and BPTT (with a tenth of the ANN's learning rate) for fine-tuning."""
    code = settings.spike_code
    blocks = chain_of(ann_cfg)
    check_clamping(blocks, code)
    data = copy.deepcopy(config_to_dict(ann_cfg))
    data["name"] = f"{ann_cfg.name}_{code.name}"
    data["dataset"]["encoding"]["type"] = "direct"
    model = data["model"]
    model["neuron"] = neuron_settings(code, settings.theta)
    model.update(
        dt=1.0,
        sim_time=float(settings.n_steps),
        readout="final_membrane",
        readout_steps=None,
        blocks=spiking_blocks(blocks, code, settings.n_steps),
    )
    data["learning"]["rule"] = "bptt"
    data["learning"]["optimizer"]["lr"] = ann_cfg.learning.optimizer.lr * FINE_TUNING_LR_FACTOR
    data["training"].update(
        epochs=1,
        savepoints=[1],
        tensorboard=False,
        batch_size_eval=min(ann_cfg.training.batch_size_eval, EVALUATION_BATCH),
    )
    return data


def code_gain(code: Code, threshold: float) -> float:
    """What the normalisation multiplies the blocks into hidden neurons by: the threshold for
    the rate code (whose rates are then x / theta), 1 for the ttfs codes (whose threshold sets
    the timing)."""
    return 1.0 if code.once else threshold


def analog_view(
    spiking: Mapping[str, Any], state: Mapping[str, torch.Tensor], gain: float = 1.0
) -> AnalogNetwork:
    """The ANN in the block layout of the converted network ``spiking`` (a config dict; ReLUs
    before the pooling that followed them, holds as identities) with the weights and biases of
    ``state``: the ANN's, or the converted network's (normalised: the same scores, since ReLU
    and max pooling commute with positive factors and the label layer keeps its scale; the
    ``gain`` of the rate code, :func:`code_gain`, is divided out again)."""
    data = copy.deepcopy(dict(spiking))
    data["learning"]["rule"] = "ann"
    network = ann.build_network(config_from_dict(data, source="<converted ANN>"))
    weighted = {
        key: value
        for key, value in state.items()
        if key.rsplit(".", 1)[-1] in ("weight", "bias") and ".neurons." not in key
    }
    mismatched = set(weighted) ^ {
        key for key in network.state_dict() if key.rsplit(".", 1)[-1] in ("weight", "bias")
    }
    if mismatched:
        raise SnnexpError(
            f"the ANN's savepoint does not fit its config ({', '.join(sorted(mismatched))}); was "
            "the config edited after training?"
        )
    network.load_state_dict(weighted, strict=False)
    if gain != 1.0:
        unit_scales = dict.fromkeys(hidden_neurons(network.spec), 1.0)
        factors = weight_factors(block_order(network.spec), unit_scales, network.spec.output, gain)
        scale_weights(network, network, factors, divide=True)
    return network


def block_order(spec: GraphSpec) -> list[tuple[str, str]]:
    """(name, block type) of every block, in order (what the normalisation walks)."""
    return [(name, block.type) for name, block in spec.blocks.items()]


@torch.no_grad()
def activation_scales(
    network: AnalogNetwork, input_times: torch.Tensor, percentile: float, batch_size: int
) -> dict[str, float]:
    """lambda of every hidden neurons block: the percentile of its positive activations over
    ``input_times`` (:func:`~snnexp.conversion.normalize.activation_scale`)."""
    hidden = hidden_neurons(network.spec)
    collected: dict[str, list[torch.Tensor]] = {name: [] for name in hidden}
    network.eval()
    for start in range(0, len(input_times), batch_size):
        values = network.activations(input_times[start : start + batch_size])
        for name in hidden:
            collected[name].append(values[name].flatten())
    return {
        name: activation_scale(torch.cat(parts), percentile) for name, parts in collected.items()
    }


def with_normalised_clamps(
    spiking: Mapping[str, Any], scales: Mapping[str, float]
) -> dict[str, Any]:
    """The converted config with each clamp beta_l of a clamped ReLU in the units of the
    normalised activations, beta_l / lambda_l (the ANN twin of the normalised weights then gives
    the ANN's scores: x > beta_l <=> x / lambda_l > beta_l / lambda_l)."""
    spiking = copy.deepcopy(dict(spiking))
    for block in spiking["model"]["blocks"]:
        if block.get("clamp"):
            block["clamp"] = block["clamp"] / scales[block["name"]]
    return spiking


def hidden_neurons(spec: GraphSpec) -> list[str]:
    """The neurons blocks other than the label layer, in order."""
    return [
        name
        for name, block in spec.blocks.items()
        if block.type == "neurons" and name != spec.output
    ]


def macs_per_sample(spec: GraphSpec) -> float:
    """Multiply-accumulates of one pass of the ANN: inputs x outputs of each linear block,
    outputs x (input channels / groups) x kernel^2 of each convolution."""
    total = 0
    for block in spec.blocks.values():
        if block.type == "linear":
            total += math.prod(block.in_shape) * block.params["features"]
        elif block.type == "conv2d":
            fan_in = block.in_shape[0] // block.params["groups"] * block.params["kernel"] ** 2
            total += math.prod(block.out_shape) * fan_in
    return float(total)


def scale_weights(
    target: GraphNetwork | AnalogNetwork,
    source: AnalogNetwork,
    factors: Mapping[str, tuple[float, float]],
    divide: bool = False,
) -> None:
    """W <- W lambda_{l-1} / lambda_l, b <- b / lambda_l (:mod:`.normalize`): ``source``'s
    weights and biases times their (weight, bias) factors into ``target`` (``divide``: divided
    by them, which undoes the scaling)."""
    with torch.no_grad():
        for name, block_factors in factors.items():
            parameters = (source.blocks[name].weight, source.blocks[name].bias)
            targets = (target.blocks[name].weight, target.blocks[name].bias)
            for value, into, factor in zip(parameters, targets, block_factors, strict=True):
                if value is not None:
                    into.copy_(value / factor if divide else value * factor)


def measure_split(
    trainer: Trainer, split: EncodedSplit, code: Code
) -> tuple[EvalResult, SplitMeasures]:
    """One simulation of ``split``: the usual evaluation and the measures by step and layer."""
    model = trainer.model
    assert isinstance(model, GraphNetwork)
    model.count_onsets = code.once
    predictions: list[torch.Tensor] = []
    spikes: dict[str, list[torch.Tensor]] = {name: [] for name in model.hidden_blocks}
    synops: list[torch.Tensor] = []

    def forward(times: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.synaptic_events = {}
        try:
            step_scores, hidden = model.scores_by_step(times)
            events = model.synaptic_events
        finally:
            model.synaptic_events = None
        steps, batch, classes = step_scores.shape
        flat = trainer.loss_fn.predict(step_scores.reshape(steps * batch, classes))
        predictions.append(flat.reshape(steps, batch).cpu())
        for name, counts in zip(model.hidden_blocks, hidden, strict=True):
            spikes[name].append(counts.sum(1).cpu())
        total = sum(torch.as_tensor(block.total).double().cpu() for block in events.values())
        synops.append(torch.zeros(len(times), dtype=torch.float64) + total)
        return step_scores[-1], hidden

    batch = trainer.cfg.training.batch_size_eval
    result = evaluate(model, trainer.loss_fn, split, batch, forward=forward)
    correct = torch.cat(predictions, dim=1) == result.labels.unsqueeze(0)
    per_layer = {name: torch.cat(parts).double() for name, parts in spikes.items()}
    measures = SplitMeasures(
        accuracy_by_step=correct.double().mean(dim=1).tolist(),
        spikes_per_sample={
            name: {"mean": float(counts.mean()), "var": float(counts.var(unbiased=False))}
            for name, counts in per_layer.items()
        },
        synops_per_sample=float(torch.cat(synops).mean()),
    )
    return result, measures


def convert(
    ann_cfg: ExperimentConfig,
    ann_state: Mapping[str, torch.Tensor],
    settings: ConversionSettings,
    data_dir: Path | None = None,
) -> Conversion:
    """The converted network of an ANN (config and savepoint weights), normalised on the first
    ``settings.calibration_samples`` training samples and measured on ``settings.splits``."""
    spiking = spiking_config(ann_cfg, settings)
    analog = analog_view(spiking, ann_state)
    train = load_split(ann_cfg.dataset, "train", data_dir)
    calibration = train.input_times[: settings.calibration_samples].to(
        next(analog.parameters()).dtype
    )
    batch = spiking["training"]["batch_size_eval"]
    scales = activation_scales(analog, calibration, settings.percentile, batch)
    spiking = with_normalised_clamps(spiking, scales)
    snn_cfg = config_from_dict(spiking, source="<converted network>")
    trainer = Trainer(snn_cfg, progress=False, data_dir=data_dir, saved_splits=settings.splits)
    analog = analog.to(trainer.device)
    gain = code_gain(settings.spike_code, settings.theta)
    factors = weight_factors(block_order(analog.spec), scales, analog.spec.output, gain)
    assert isinstance(trainer.model, GraphNetwork)
    scale_weights(trainer.model, analog, factors)
    loss = ann.build_loss(ann_cfg)
    conversion = Conversion(
        trainer=trainer,
        scales=scales,
        ann_accuracy={},
        ann_macs_per_sample=macs_per_sample(analog.spec),
        calibration_samples=len(calibration),
    )
    normalised = analog_view(spiking, trainer.model.state_dict(), gain).to(trainer.device)
    for name in trainer.saved_splits:
        split = trainer.splits[name]
        conversion.ann_accuracy[name] = evaluate(normalised, loss, split, batch).accuracy
        result, measures = measure_split(trainer, split, settings.spike_code)
        trainer.use_evaluation(name, result)
        conversion.measures[name] = measures
    return conversion
