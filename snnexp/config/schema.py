"""The config schema: one dataclass per section, every key with its default, and the choices of
the enumerated keys. See :mod:`snnexp.config` for how a file is read into it."""

from __future__ import annotations

from dataclasses import dataclass, field

from snnexp.data.registry import DATASETS
from snnexp.functional.stepped import NEURON_MODELS
from snnexp.rules import LEARNING_RULES

DATASET_SHAPES: dict[str, tuple[int, int]] = {
    name: (spec.n_inputs, spec.n_classes) for name, spec in DATASETS.items()
}
"""(n_inputs, n_classes) of every registered dataset."""
IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {
    name: spec.image_shape for name, spec in DATASETS.items() if spec.image_shape is not None
}
"""(channels, height, width) of the image datasets, the input shape of conv blocks."""

RULES = tuple(LEARNING_RULES)
FIRST_SPIKE_TAU_RATIOS = {
    name: rule.tau_ratio for name, rule in LEARNING_RULES.items() if rule.tau_ratio is not None
}
"""tau_mem / tau_syn that each exact first-spike rule requires."""
TIME_STEPPED_RULES = tuple(name for name, rule in LEARNING_RULES.items() if rule.time_stepped)
ANALOG_RULES = tuple(name for name, rule in LEARNING_RULES.items() if rule.analog)
SCORE_RULES = tuple(name for name, rule in LEARNING_RULES.items() if rule.scores)
"""Rules whose label outputs are scores (time-stepped and analog networks)."""
SEQUENTIAL_DATASET = "sequential_mnist"
SEQUENCE_LENGTH = 784
"""Sequential MNIST presents one pixel per step."""

LOSS_TYPES = tuple(dict.fromkeys(loss for rule in LEARNING_RULES.values() for loss in rule.losses))
LSNN_NEURON = "lsnn"
"""The neuron type of the LSNN network of Bellec et al. 2018 (:mod:`snnexp.modules.lsnn`)."""
NEURON_TYPES = (*NEURON_MODELS, LSNN_NEURON)
ENCODINGS = ("latency", "rate", "threshold_crossing", "lsnn_crossing", "direct")
SEQUENCE_ENCODINGS = ("threshold_crossing", "lsnn_crossing")
DRAW_ON = ("device", "cpu")
OUTPUT_LAYERS = ("spiking", "membrane")
WEIGHT_INITS = ("normal", "uniform_fan_in")
RATE_REDUCTIONS = ("mean", "sum")
SCHEDULER_INTERVALS = ("epoch", "batch")
SURROGATES = ("fast_sigmoid", "arctan", "triangle")
OPTIMIZER_TYPES = ("adam", "sgd")
SCHEDULER_TYPES = ("StepLR", "MultiStepLR", "ExponentialLR", "none")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float64", "float32")
SIMULATORS = ("exact", "stepped")


# --------------------------------------------------------------------------------------------
# schema


@dataclass
class EncodingConfig:
    """How values become spikes. Every dataset is first latency coded: a value v in [0, 1]
    spikes at t_early + v (t_late - t_early). Time-stepped (BPTT) networks then turn these times
    into spike trains: ``latency`` (the spike falls into step floor(t / dt); with
    ``interpolate`` it is split between that step and the next, amplitudes 1 - f and f for
    f = t / dt - floor(t / dt), so sub-step timing survives), ``rate`` (a
    Bernoulli spike per step with probability rate_gain (t_late - t) / (t_late - t_early)) or
    ``threshold_crossing`` (sequential MNIST: one pixel per step, 2 x thresholds neurons that
    fire when the intensity crosses their level upward or downward) or ``lsnn_crossing`` (the
    LSNN tutorial's code of the same: ``thresholds`` levels numpy.linspace(0, 1, n), 2 n - 1
    neurons, plus a cue neuron firing in each of the ``cue_steps`` steps after the pixels).
    ``draw_on``: where the random numbers of the rate code come from, ``device`` (a seeded
    generator on the run's device, its state saved in savepoints) or ``cpu`` (the run's CPU
    generator: the same spikes on every device, slower on a GPU)."""

    t_early: float = 0.15
    t_late: float = 2.0
    type: str = "latency"
    rate_gain: float = 1.0
    thresholds: int = 40
    interpolate: bool = False
    cue_steps: int = 0
    draw_on: str = "device"


@dataclass
class DatasetConfig:
    """Which dataset, where it lives, the Yin-Yang split sizes and seeds, and the encoding."""

    name: str = "yin_yang"
    root: str | None = None
    download: bool = False
    train_size: int = 5000
    val_size: int = 1000
    test_size: int = 1000
    train_seed: int = 42
    val_seed: int = 41
    test_seed: int = 40
    encoding: EncodingConfig = field(default_factory=EncodingConfig)


@dataclass
class NeuronConfig:
    """Neuron parameters. First-spike rules use the current-based LIF ``synaptic`` neuron with
    tau_syn, tau_mem, threshold, leak (the resting potential E_L) and g_leak. Time-stepped (BPTT)
    networks use ``type`` (leaky, synaptic, alif, alpha, lapicque, iaf), the time constants in the
    units of model.dt, the threshold, the reset (subtract / zero) and refractory steps; alif
    adds tau_adapt and adapt_strength (LSNN's beta), lapicque uses resistance and capacitance
    (tau_mem = R C). learn_tau makes the time constants trainable, per_neuron_tau gives each
    neuron its own. ``lsnn`` is the LSNN network of Bellec et al. 2018 as its code runs it
    (:mod:`snnexp.functional.lsnn`): one recurrent layer (``layer_sizes: [n, classes]``, the
    last ``adaptive_neurons[0]`` adaptive) with tau_mem, tau_adapt, adapt_strength, threshold
    and refractory_steps, read out by ``readout: filtered_linear``."""

    tau_syn: float = 1.0
    tau_mem: float = 1.0
    threshold: float = 1.0
    leak: float = 0.0
    g_leak: float = 1.0
    type: str = "synaptic"
    reset: str = "subtract"
    refractory_steps: int = 0
    tau_adapt: float = 700.0
    adapt_strength: float = 1.8
    resistance: float = 1.0
    capacitance: float = 1.0
    learn_tau: bool = False
    per_neuron_tau: bool = False


@dataclass
class ModelConfig:
    """Network layout, weight initialisation, bias spikes and the simulator.

    Time-stepped networks run round(sim_time / dt) steps of dt; per layer they may be
    ``recurrent`` (all-to-all) with feed-forward ``delays`` (in steps); ``adaptive_neurons``
    says how many neurons of an alif layer adapt (empty: all). The label layer is ``spiking``
    or a non-spiking ``membrane`` integrator, read out as spike_count, max_membrane,
    mean_membrane, final_membrane or first_spike over the last ``readout_steps`` steps (null:
    all).
    ``weight_init`` normal draws N(weight_mean, weight_std^2); uniform_fan_in draws
    U(-1/sqrt(n_in), 1/sqrt(n_in)) as torch.nn.Linear does.

    ``synaptic_delays`` (lsnn): every synapse gets a random delay of 0 .. n - 1 steps (LSNN's
    n_delay; 1: none). ``readout: filtered_linear`` (lsnn) filters the spikes with
    ``readout_tau`` (in units of dt) and averages a linear map of them over the read-out steps.

    ``blocks`` (BPTT) describes the network as a graph of blocks instead (conv, pooling,
    neurons, delays, cycles; see :mod:`snnexp.graph.spec`); then ``layer_sizes`` and the
    per-layer keys are not used, and ``n_inputs`` is set from the dataset. ``nir`` (BPTT) names
    a NIR graph (:mod:`snnexp.nir`) that ``train`` starts from: its network becomes
    ``blocks`` and its weights the initial ones (the run's config.yaml keeps both).
    """

    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    n_inputs: int = 4
    layer_sizes: list[int] = field(default_factory=lambda: [120, 3])
    bias_times: list[list[float]] = field(default_factory=lambda: [[0.9], [0.9]])
    weight_mean: list[float] = field(default_factory=lambda: [1.5, 0.5])
    weight_std: list[float] = field(default_factory=lambda: [0.8, 0.8])
    dtype: str = "float64"
    simulator: str = "exact"
    dt: float = 0.01
    sim_time: float = 4.0
    weight_init: str = "normal"
    recurrent: list[bool] = field(default_factory=lambda: [False, False])
    adaptive_neurons: list[int] = field(default_factory=list)
    delays: list[int] = field(default_factory=lambda: [0, 0])
    output: str = "spiking"
    readout: str = "spike_count"
    readout_steps: int | None = None
    readout_tau: float = 20.0
    synaptic_delays: int = 1
    blocks: list[dict] = field(default_factory=list)
    nir: str | None = None


@dataclass
class LossConfig:
    """Loss. First-spike rules: time-to-first-spike (xi, alpha, beta) or MSE to target times
    (t_correct, t_wrong). Time-stepped rules: cross_entropy on the read-out (first_spike
    read-outs use the temperature xi) or mse_count to target spike counts (count_correct and
    count_wrong, as fractions of the read-out steps); rate_regularization adds
    strength x mean (``rate_reduction: sum``: the sum, as LSNN) over hidden neurons of
    (rate - target_rate)^2, rates in spikes per step."""

    type: str = "ttfs"
    xi: float = 0.2
    alpha: float = 0.005
    beta: float = 1.0
    t_correct: float = 1.0
    t_wrong: float = 2.0
    count_correct: float = 0.8
    count_wrong: float = 0.2
    rate_regularization: float = 0.0
    target_rate: float = 0.02
    rate_reduction: str = "mean"


@dataclass
class SurrogateConfig:
    """The surrogate spike derivative of BPTT: fast_sigmoid, arctan or triangle (LSNN)."""

    type: str = "fast_sigmoid"
    slope: float = 25.0
    dampening: float = 1.0


SIGN_MODES = ("free", "dale", "lsnn")
SCOPES = ("per_layer", "global")
REWIRING_INITS = ("layer", "balanced", "lsnn")
BIAS_SYNAPSES = ("rewired", "dense")
"""Choices of learning.rewiring.signs, .scope and .bias_synapses (DEEP R, snnexp.rules.deep_r)."""


@dataclass
class RewiringConfig:
    """DEEP R: keep a fraction ``connectivity`` of each weight matrix (scope per_layer) or of
    all of them (global) active, with L1 strength l1 and noise temperature; signs free or
    following Dale's law (excitatory_fraction of the presynaptic neurons excitatory).
    bias_synapses: rewired (the bias spikes' rows are part of the budget) or dense (always
    active, free sign, outside the budget, like the biases of the DEEP R paper). Signs lsnn:
    Dale's law as the LSNN code draws it (one sign per neuron in every matrix it feeds, exactly
    int(excitatory_fraction n) + 1 excitatory per population; LSNN networks only). init: the
    active synapses at the start and their magnitudes, those of the layer's own initial weights
    (layer) or LSNN's balanced signed matrix scaled to spectral radius 1 (balanced; lsnn: also
    LSNN's initial synapses, int(connectivity size) drawn with replacement in every matrix; both
    with signs dale or lsnn). connectivity null: dense, no rewiring."""

    connectivity: float | None = None
    l1: float = 0.0
    temperature: float = 0.0
    signs: str = "free"
    excitatory_fraction: float = 0.8
    scope: str = "per_layer"
    bias_synapses: str = "rewired"
    init: str = "layer"


@dataclass
class OptimizerConfig:
    """Optimizer type and its parameters."""

    type: str = "adam"
    lr: float = 0.005
    momentum: float = 0.0


@dataclass
class SchedulerConfig:
    """Learning-rate scheduler (type "none" keeps the rate constant); step_size and milestones
    count epochs, or optimizer steps (batches) with ``interval: batch``."""

    type: str = "StepLR"
    step_size: int = 20
    gamma: float = 0.95
    milestones: list[int] = field(default_factory=list)
    interval: str = "epoch"


@dataclass
class LearningConfig:
    """Learning rule, loss, optimizer and learning-rate schedule."""

    rule: str = "first_spike_et"
    loss: LossConfig = field(default_factory=LossConfig)
    surrogate: SurrogateConfig = field(default_factory=SurrogateConfig)
    rewiring: RewiringConfig = field(default_factory=RewiringConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    lr_scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)


@dataclass
class WeightBumpingConfig:
    """Raise weights when more than max_missing of a layer's neurons stay silent; skip_step:
    instead of the batch's optimizer step (published), else after it."""

    enabled: bool = True
    value: float = 0.0005
    exponential: bool = True
    targeted: bool = True
    max_missing: list[float] = field(default_factory=lambda: [0.3, 0.0])
    skip_step: bool = True


@dataclass
class NoiseConfig:
    """Gaussian noise added to the input spike times during training (std 0: none)."""

    mean: float = 0.0
    std: float = 0.0


@dataclass
class SeedConfig:
    """Seeds of the torch and numpy random generators."""

    torch: int = 2000
    numpy: int = 12345


@dataclass
class TrainingConfig:
    """The training loop: epochs, batches, savepoints, clipping, bumping, noise, seeds, device.
    ``log_every``: log the running training loss and accuracy every this many batches (null:
    once per epoch only), for epochs that take long. ``checkpoint_minutes``: write the run's
    resume state (everything needed to go on bitwise) this often, so a killed job loses at most
    that much training (null or 0: only at savepoints and on a stop signal).
    ``thread_independent``: torch computes on one CPU thread and only the large products with
    trained weights are shared among the threads, in parts fixed by the shapes, so that a
    time-stepped (BPTT) run is bitwise the same with any number of CPU threads (first-spike
    rules always are). ``tensorboard``: write per-epoch statistics
    (loss, accuracy, lr, weight histograms, spike counts and first spike times per layer) to
    ``<run>/tensorboard/`` (optional dependency tensorboard). ``validate_every``: also
    evaluate the validation split every this many batches, logged and written to
    ``validation.csv`` (iteration, loss, accuracy), for runs judged by iterations."""

    epochs: int = 300
    batch_size: int = 150
    batch_size_eval: int = 200
    savepoints: list[int] = field(default_factory=list)
    log_every: int | None = None
    checkpoint_minutes: float | None = 10.0
    max_dw_norm: float | None = 0.2
    weight_bumping: WeightBumpingConfig = field(default_factory=WeightBumpingConfig)
    input_noise: NoiseConfig = field(default_factory=NoiseConfig)
    seeds: SeedConfig = field(default_factory=SeedConfig)
    device: str = "auto"
    thread_independent: bool = False
    tensorboard: bool = False
    validate_every: int | None = None


@dataclass
class ExperimentConfig:
    """A complete, validated experiment description."""

    name: str | None = None
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)


def steps_of(sim_time: float, dt: float) -> int:
    """Number of steps of a time-stepped simulation: round(sim_time / dt), at least 1."""
    return max(1, round(sim_time / dt))


def n_steps(model: ModelConfig) -> int:
    """Number of steps of the model's time-stepped simulation (:func:`steps_of`)."""
    return steps_of(model.sim_time, model.dt)
