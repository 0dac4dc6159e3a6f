"""The blocks of a network graph: what each computes, its parameters and its output shape.

A block maps the sum of its inputs, a sequence ``(steps, batch, *shape)``, to its output
sequence. Stateless blocks (``linear``, ``conv2d``, the pools, ``flatten``, ``dropout``,
``sum``, ``delay``) act on every step alike, so a whole chunk of steps is one call (the steps
are folded into the batch); a ``neurons`` block carries its neuron state from step to step.

Every block type is one :class:`BlockType` in :data:`BLOCK_TYPES`: its parameters with their
defaults (checked by :mod:`snnexp.graph.spec`), its output shape, and the module that runs it.
A new block type is one subclass of :class:`Block` and one entry there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnexp.choices import FIRST_SPIKE_BLOCK
from snnexp.data.encoding import latency_spike_train
from snnexp.functional import fixed_partition
from snnexp.functional.stepped.base import (
    NeuronState,
    StepCoefficients,
    integrator_step,
    neuron_step,
    threshold_of,
)
from snnexp.functional.surrogate import Surrogate
from snnexp.graph.parameters import Check, finite_number, non_negative_number
from snnexp.modules.neurons import SpikingNeurons
from snnexp.modules.weight_products import WeightProducts

Shape = tuple[int, ...]
Trace = dict[str, torch.Tensor]
REQUIRED = object()
"""Default of a parameter the config must give."""


class Block(nn.Module):
    """A stateless block: ``apply`` maps ``(n, *in_shape)`` to ``(n, *out_shape)`` for any n.

    ``stateful`` blocks carry a state from step to step; ``timed`` ones add something that
    depends on the step itself (bias spikes). Neither kind maps an input that is the same in
    every step to an output that is.
    """

    stateful = False
    timed = False

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Any:
        """No state."""
        return None

    def at_step(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """The output of step ``step`` for that step's input ``(batch, *shape)``."""
        return self.apply(x)

    def run(
        self, x: torch.Tensor, state: Any, first_step: int, record: bool = False
    ) -> tuple[torch.Tensor, Any, Trace]:
        """A chunk ``(steps, batch, *shape)`` starting at step ``first_step`` -> the output
        chunk, the state after it and, with ``record``, traces of internal variables; here the
        steps are folded into the batch for one call of :meth:`apply`."""
        steps, batch = x.shape[:2]
        y = self.apply(x.reshape(steps * batch, *x.shape[2:]))
        return y.reshape(steps, batch, *y.shape[1:]), state, {}


class Identity(Block):
    """``sum`` (the sum of the inputs, e.g. a residual join) and ``delay`` (the input k steps
    later: the delay itself is on the edge into the block)."""

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def run(
        self, x: torch.Tensor, state: Any, first_step: int, record: bool = False
    ) -> tuple[torch.Tensor, Any, Trace]:
        return x, state, {}


class Linear(Block, WeightProducts):
    """Dense synapses: y_t = x_t W + b + s_t W_s, x the input flattened, W of shape (in, out) as
    the other snnexp layers, b an optional constant bias current, s_t the bias spikes: one extra
    input per entry of ``bias_times`` that spikes once, in step floor(t / dt). W, b and W_s are
    drawn from U(-1/sqrt(in), 1/sqrt(in)) as in torch.nn.Linear (in: inputs and bias spikes)."""

    def __init__(
        self,
        n_in: int,
        features: int,
        bias: bool,
        dtype: torch.dtype,
        bias_times: Sequence[float] = (),
        dt: float = 1.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, features, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(features, dtype=dtype)) if bias else None
        self.timed = bool(bias_times)
        self.dt = dt
        times = torch.tensor(list(bias_times), dtype=dtype) if bias_times else None
        self.register_buffer("bias_times", times)
        self.bias_weight = (
            nn.Parameter(torch.zeros(len(bias_times), features, dtype=dtype))
            if bias_times
            else None
        )

    def reset_parameters(self, generator: torch.Generator | None) -> None:
        n_bias = 0 if self.bias_times is None else len(self.bias_times)
        bound = 1 / math.sqrt(self.weight.shape[0] + n_bias)
        with torch.no_grad():
            for parameter in (self.weight, self.bias, self.bias_weight):
                if parameter is not None:
                    parameter.uniform_(-bound, bound, generator=generator)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        y = self.product(x.flatten(1), self.weight)
        return y if self.bias is None else y + self.bias

    def magnitude(self, x: torch.Tensor) -> torch.Tensor:
        """x |W|: the input through the magnitudes of the weights, without bias."""
        return self.product(x.flatten(1), self.weight.abs())

    def fan_out(self, in_shape: Shape) -> torch.Tensor:
        """The synapses out of each input ``in_shape``: every input reaches every feature."""
        return torch.full(in_shape, float(self.weight.shape[1]), dtype=self.weight.dtype)

    def bias_current(self, first_step: int, steps: int) -> torch.Tensor:
        """s_t W_s for steps ``first_step ..``: ``(steps, 1, features)``."""
        spikes = latency_spike_train(self.bias_times.unsqueeze(0), self.dt, first_step, steps)
        return self.product(spikes, self.bias_weight)

    def at_step(self, x: torch.Tensor, step: int) -> torch.Tensor:
        y = self.apply(x)
        return y + self.bias_current(step, 1)[0] if self.timed else y

    def run(
        self, x: torch.Tensor, state: Any, first_step: int, record: bool = False
    ) -> tuple[torch.Tensor, Any, Trace]:
        y, state, trace = super().run(x, state, first_step, record)
        if self.timed:
            y = y + self.bias_current(first_step, len(x))
        return y, state, trace


class Conv2d(Block, WeightProducts):
    """2-d convolution (torch.nn.Conv2d's weight layout and initialisation)."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel: int,
        stride: int,
        padding: int,
        groups: int,
        bias: bool,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        self.stride, self.padding, self.groups = stride, padding, groups
        shape = (channels, in_channels // groups, kernel, kernel)
        self.weight = nn.Parameter(torch.zeros(shape, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(channels, dtype=dtype)) if bias else None

    def reset_parameters(self, generator: torch.Generator | None) -> None:
        bound = 1 / math.sqrt(self.weight[0].numel())
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound, generator=generator)

    def magnitude(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of ``x`` with the magnitudes of the weights, without bias."""
        weight = self.weight.abs()
        return F.conv2d(x, weight, None, self.stride, self.padding, 1, self.groups)

    def fan_out(self, in_shape: Shape) -> torch.Tensor:
        """The synapses out of each input position ``in_shape`` (the outputs it reaches:
        fewer at the borders and with strides), the gradient of the sum of a convolution with
        unit weights."""
        weight = self.weight.detach()
        ones = torch.ones((1, *in_shape), dtype=weight.dtype, device=weight.device)
        ones.requires_grad_(True)
        with torch.enable_grad():
            unit = torch.ones_like(weight)
            total = F.conv2d(ones, unit, None, self.stride, self.padding, 1, self.groups).sum()
            (grad,) = torch.autograd.grad(total, ones)
        return grad[0]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of ``(n, C, H, W)`` inputs, computed in the channels-last layout
        (on CPUs faster for the many samples of a chunk of steps), returned in the usual one."""
        x = x.contiguous(memory_format=torch.channels_last)
        if self.fixed_partition:
            y = fixed_partition.conv2d(
                x, self.weight, self.bias, self.stride, self.padding, self.groups
            )
        else:
            y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)
        return y.contiguous()


class Pool2d(Block):
    """Average, maximum or sum over each kernel x kernel window."""

    fixed_partition = False
    """Whether the samples are pooled in parts side by side (where torch runs on one thread,
    :mod:`snnexp.functional.fixed_partition`)."""

    def __init__(self, kind: str, kernel: int, stride: int | None) -> None:
        super().__init__()
        self.kind, self.kernel, self.stride = kind, kernel, stride or kernel

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.fixed_partition:
            y = fixed_partition.pool2d(x, self.kind == "max", self.kernel, self.stride)
        elif self.kind == "max":
            return F.max_pool2d(x, self.kernel, self.stride)
        else:
            y = F.avg_pool2d(x, self.kernel, self.stride)
        return y * (self.kernel * self.kernel) if self.kind == "sum" else y

    def extra_repr(self) -> str:
        return f"{self.kind}, kernel={self.kernel}, stride={self.stride}"


class GatedMaxPool2d(Block):
    """Max pooling of spike trains gated by the most active input (Rueckauer et al. 2017,
    section 2.2.5): in each kernel x kernel window the output of step t is the spike of the
    input with the most spikes in steps 0 .. t (the first of equals), so the output's rate
    approaches the largest input rate, where plain max pooling of spikes would pass the union
    of all inputs' spikes. On rates (an ANN, ``apply``) it is max pooling."""

    stateful = True

    def __init__(self, kernel: int, stride: int | None) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride or kernel

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, self.kernel, self.stride)

    def run(
        self, x: torch.Tensor, state: Any, first_step: int, record: bool = False
    ) -> tuple[torch.Tensor, Any, Trace]:
        """Spikes ``(steps, batch, C, H, W)`` -> the gated spikes of each window; the state is
        the spike count of every input so far."""
        counts = torch.zeros_like(x[0]) if state is None else state
        outputs = []
        for spikes in x:
            counts = counts + spikes.detach()
            pooled, index = F.max_pool2d(counts, self.kernel, self.stride, return_indices=True)
            picked = spikes.flatten(2).gather(2, index.flatten(2))
            outputs.append(picked.view_as(pooled))
        return torch.stack(outputs), counts, {}

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"


class Hold(Block):
    """The running maximum of the input over the steps, y_t = max(y_{t-1}, x_t): after a
    neuron's first spike its output stays 1, so the synapses behind it carry a step current
    (the time-to-first-spike code of Rueckauer & Liu 2018: a neuron that fired in step t_j
    adds w_ij (t - t_j + 1) to the membrane of an integrate-and-fire target by step t). On
    values (an ANN) the identity."""

    stateful = True

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def run(
        self, x: torch.Tensor, state: Any, first_step: int, record: bool = False
    ) -> tuple[torch.Tensor, Any, Trace]:
        """Step by step (torch's cummax over the steps is slow on CPUs)."""
        running = x[0] if state is None else torch.maximum(state, x[0])
        held = [running]
        for value in x[1:]:
            running = torch.maximum(running, value)
            held.append(running)
        return torch.stack(held), running, {}


class Flatten(Block):
    """(C, H, W) -> (C H W,)."""

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class Dropout(Block):
    """Zeroes each value with probability p during training (a new draw for every step and
    sample, from torch's global generator, which savepoints store), scaling the rest by
    1 / (1 - p)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, self.training)


class Neurons(Block, WeightProducts):
    """A population of time-stepped neurons over any feature shape (a feature map of a
    convolution, or a vector), one of the models of :mod:`snnexp.functional.stepped.base`.

    ``recurrent`` adds all-to-all recurrent weights R (no self-connections) over the flattened
    population: the current of step t gains z_{t-1} R. ``spiking: false`` makes the block a
    non-spiking leaky integrator v_t = alpha v_{t-1} + x_t (a membrane read-out); its output is
    v instead of z.
    """

    stateful = True

    def __init__(self, shape: Shape, neurons: SpikingNeurons, recurrent: bool, spiking: bool):
        super().__init__()
        self.shape = shape
        self.neurons = neurons
        self.spiking = spiking
        size = neurons.size
        dtype = neurons.tau_mem.dtype
        self.recurrent_weight = (
            nn.Parameter(torch.zeros(size, size, dtype=dtype)) if recurrent else None
        )

    def reset_parameters(self, generator: torch.Generator | None) -> None:
        if self.recurrent_weight is not None:
            bound = 1 / math.sqrt(self.neurons.size)
            with torch.no_grad():
                self.recurrent_weight.uniform_(-bound, bound, generator=generator)
                self.recurrent_weight.fill_diagonal_(0.0)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> NeuronState:
        """Resting neurons."""
        return self.neurons.initial_state(batch, device, dtype)

    def step(
        self, x: torch.Tensor, state: NeuronState, params: StepCoefficients, record: bool = False
    ) -> tuple[torch.Tensor, NeuronState, Trace]:
        """One step: currents ``(batch, *shape)`` -> spikes (or membrane) of that shape, the new
        state and, with ``record``, the membrane (and threshold) ``(batch, size)``."""
        current = x.reshape(x.shape[0], -1)
        if self.recurrent_weight is not None:
            current = current + self.product(state.z, self.recurrent_weight)
        if self.spiking:
            state = neuron_step(current, state, params, self.neurons.surrogate)
            out = state.z
        else:
            state = state._replace(v=integrator_step(current, state.v, params.mem_decay))
            out = state.v
        trace = {}
        if record:
            trace["membrane"] = state.v
            if state.a is not None:
                trace["threshold"] = threshold_of(state, params)
        return out.reshape(x.shape), state, trace

    def run(
        self, x: torch.Tensor, state: NeuronState, first_step: int, record: bool = False
    ) -> tuple[torch.Tensor, NeuronState, Trace]:
        """Currents ``(steps, batch, *shape)`` -> outputs of the same shape, the state after the
        last step and, with ``record``, the traces of :meth:`step` ``(steps, batch, size)``."""
        params = self.neurons.step_params()
        if self.recurrent_weight is None and self.spiking and not record:
            fused = self.neurons.all_steps(x.reshape(*x.shape[:2], -1), state, params)
            if fused is not None:
                return fused[0].reshape(x.shape), fused[1], {}
        outputs, traces = [], []
        for current in x:
            out, state, trace = self.step(current, state, params, record)
            outputs.append(out)
            traces.append(trace)
        stacked = {key: torch.stack([t[key] for t in traces]) for key in traces[0]}
        return torch.stack(outputs), state, stacked


@dataclass(frozen=True)
class BuildContext:
    """What building a block needs besides its own parameters."""

    in_shape: Shape
    dtype: torch.dtype
    dt: float
    surrogate: Surrogate


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _image(shape: Shape, block: str) -> Shape:
    if len(shape) != 3:
        raise ValueError(
            f"{block} needs (channels, height, width) input, got {shape}; conv and pooling "
            "blocks take image datasets (mnist, fashion_mnist, 16x16_*) before any flatten"
        )
    return shape


def _conv_shape(shape: Shape, p: Mapping[str, Any]) -> Shape:
    channels, height, width = _image(shape, "conv2d")
    groups = p["groups"]
    if channels % groups or p["channels"] % groups:
        raise ValueError(
            f"groups {groups} must divide the input channels ({channels}) and the output "
            f"channels ({p['channels']})"
        )
    out = [_conv_out(n, p["kernel"], p["stride"], p["padding"]) for n in (height, width)]
    if min(out) < 1:
        raise ValueError(
            f"a kernel of {p['kernel']} (padding {p['padding']}) does not fit the input of "
            f"{height}x{width}"
        )
    return (p["channels"], *out)


def _pool_shape(shape: Shape, p: Mapping[str, Any]) -> Shape:
    channels, height, width = _image(shape, "a pooling block")
    stride = p["stride"] or p["kernel"]
    out = [_conv_out(n, p["kernel"], stride, 0) for n in (height, width)]
    if min(out) < 1:
        raise ValueError(f"a kernel of {p['kernel']} does not fit the input of {height}x{width}")
    return (channels, *out)


def _build_neurons(p: Mapping[str, Any], ctx: BuildContext) -> Neurons:
    size = math.prod(ctx.in_shape)
    parameters = {key: p[key] for key in NEURON_PARAMETERS}
    neurons = SpikingNeurons(
        size, **parameters, dt=ctx.dt, surrogate=ctx.surrogate, dtype=ctx.dtype
    )
    return Neurons(ctx.in_shape, neurons, p["recurrent"], p["spiking"])


NEURON_PARAMETERS = (
    "model",
    "tau_mem",
    "tau_syn",
    "tau_adapt",
    "adapt_strength",
    "threshold",
    "reset",
    "refractory_steps",
    "resistance",
    "capacitance",
    "learn_tau",
    "per_neuron_tau",
)
"""Parameters of a ``neurons`` block whose defaults come from ``model.neuron`` (``model`` is
the neuron model, ``model.neuron.type`` there)."""


@dataclass(frozen=True)
class BlockType:
    """One kind of block: its parameters (name -> default, :data:`REQUIRED` where the config
    must give one), its output shape for an input shape, how to build it, and the checks of
    parameters that no other block has."""

    parameters: Mapping[str, Any]
    shape: Callable[[Shape, Mapping[str, Any]], Shape]
    build: Callable[[Mapping[str, Any], BuildContext], Block]
    doc: str
    checks: Mapping[str, Check] = field(default_factory=dict)
    """Checks of parameters that :data:`~snnexp.graph.parameters.PARAMETER_CHECKS` lacks."""
    exact: bool = False
    """A block of the exact first-spike rules: built by them (:mod:`snnexp.rules.first_spike`)
    from the per-layer lists it fills, not by the time-stepped graph (``build`` unused)."""
    in_cycles: bool = True
    """Whether it may be part of a cycle (run step by step); blocks that keep a state over the
    steps only run whole chunks."""


def _same(shape: Shape, _p: Mapping[str, Any]) -> Shape:
    return shape


def _built_by_the_first_spike_rules(_p: Mapping[str, Any], _ctx: BuildContext) -> Block:
    raise TypeError(
        f"{FIRST_SPIKE_BLOCK} blocks are built by the exact first-spike rules, not by the "
        "time-stepped graph"
    )


BLOCK_TYPES: dict[str, BlockType] = {
    "linear": BlockType(
        {"features": REQUIRED, "bias": True, "bias_times": []},
        lambda shape, p: (p["features"],),
        lambda p, ctx: Linear(
            math.prod(ctx.in_shape), p["features"], p["bias"], ctx.dtype, p["bias_times"], ctx.dt
        ),
        "dense synapses over the flattened input (bias_times: bias spikes)",
    ),
    "conv2d": BlockType(
        {
            "channels": REQUIRED,
            "kernel": REQUIRED,
            "stride": 1,
            "padding": 0,
            "groups": 1,
            "bias": True,
        },
        _conv_shape,
        lambda p, ctx: Conv2d(
            ctx.in_shape[0],
            p["channels"],
            p["kernel"],
            p["stride"],
            p["padding"],
            p["groups"],
            p["bias"],
            ctx.dtype,
        ),
        "2-d convolution",
    ),
    **{
        f"{kind}_pool2d": BlockType(
            {"kernel": REQUIRED, "stride": None},
            _pool_shape,
            lambda p, ctx, kind=kind: Pool2d(kind, p["kernel"], p["stride"]),
            f"{kind} pooling (stride: the kernel by default)",
        )
        for kind in ("avg", "max", "sum")
    },
    "gated_max_pool2d": BlockType(
        {"kernel": REQUIRED, "stride": None},
        _pool_shape,
        lambda p, ctx: GatedMaxPool2d(p["kernel"], p["stride"]),
        "max pooling of spike trains gated by the input with the most spikes so far",
        in_cycles=False,
    ),
    "hold": BlockType(
        {},
        _same,
        lambda p, ctx: Hold(),
        "the running maximum of its input (a step current)",
        in_cycles=False,
    ),
    "flatten": BlockType({}, lambda shape, p: (math.prod(shape),), lambda p, ctx: Flatten(), ""),
    "dropout": BlockType({"p": 0.5}, _same, lambda p, ctx: Dropout(p["p"]), "dropout"),
    "neurons": BlockType(
        {
            **dict.fromkeys(NEURON_PARAMETERS, REQUIRED),
            "recurrent": False,
            "spiking": True,
            "clamp": 0.0,
            "dynamic_threshold": False,
        },
        _same,
        _build_neurons,
        "time-stepped neurons (defaults from model.neuron); in an ANN a ReLU, clamped to 0 "
        "below `clamp` (for ttfs_clamped conversion; spiking neurons ignore it); "
        "`dynamic_threshold`: raised by the weights of inputs yet to fire "
        "(snnexp.graph.dynamic_threshold)",
        checks={"clamp": (non_negative_number, "a number >= 0")},
    ),
    "delay": BlockType(
        {"steps": 1}, _same, lambda p, ctx: Identity(), "its input, `steps` steps later"
    ),
    "sum": BlockType({}, _same, lambda p, ctx: Identity(), "the sum of its inputs"),
    FIRST_SPIKE_BLOCK: BlockType(
        {"features": REQUIRED, "weight_mean": REQUIRED, "weight_std": REQUIRED, "bias_times": []},
        lambda shape, p: (p["features"],),
        _built_by_the_first_spike_rules,
        "dense synapses into current-based LIF neurons that fire once, timed exactly "
        "(first-spike rules; weights from N(weight_mean, weight_std^2))",
        checks={
            "weight_mean": (finite_number, "a finite number"),
            "weight_std": (non_negative_number, "a number >= 0"),
        },
        exact=True,
    ),
}
"""Every block type a config can name in ``model.blocks``."""
