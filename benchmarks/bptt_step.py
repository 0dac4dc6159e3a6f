"""Time one BPTT training step of the 784-1000-10 leaky network (25 steps, batch 128), then the
Open Neuromorphic benchmark network.

    python benchmarks/bptt_step.py [--batch 128] [--steps 25] [--repeats 20] [--device auto]
        [--on-neurons 4096] [--on-steps 500] [--on-batch 16] [--on-repeats 3]

Prints samples per second, peak memory and how much of a step the rate-coded input spikes take
(snnexp draws them where its runs do: on the device, ``dataset.encoding.draw_on: device``). When
snnTorch is installed (``pip install '.[bench]'``), the identical network (nn.Linear without
bias + snn.Leaky, subtractive reset, fast-sigmoid surrogate) is timed in the same run, fed by the
same encoder in each step, and the ratio printed.

Then the Open Neuromorphic library benchmark (``benchmarks/open_neuromorphic.py``: Linear(n, n)
+ LIF, batch 16, 500 steps, n = 4096, forward and backward of ``output.sum()``) for snnexp and
each installed peer (snnTorch, norse, spikingjelly's torch backend), with every ratio;
``--on-neurons 0`` skips it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import torch
from open_neuromorphic import PEERS, snnexp_step
from timing import (
    compare_with_snntorch,
    cross_entropy_step,
    print_snnexp_step,
    seconds_per_call,
    step_arguments,
)
from torch import nn

from snnexp.data.encoding import SpikeEncoder
from snnexp.functional.surrogate import Surrogate
from snnexp.modules.neurons import SpikingNeurons
from snnexp.modules.stepped_layer import SpikingLayer
from snnexp.modules.time_stepped import TimeSteppedNetwork
from snnexp.run.build import resolve_device

SIZES = (784, 1000, 10)
BETA = 0.95
SLOPE = 25.0


def snnexp_network(steps: int) -> TimeSteppedNetwork:
    """784-1000-10 leaky neurons with decay BETA per step, spike-count read-out."""
    tau = -1.0 / math.log(BETA)
    layers = [
        SpikingLayer(
            n_in,
            SpikingNeurons(
                n_out, "leaky", dt=1.0, tau_mem=tau, surrogate=Surrogate("fast_sigmoid", SLOPE)
            ),
        )
        for n_in, n_out in zip(SIZES[:-1], SIZES[1:], strict=True)
    ]
    for layer in layers:
        layer.reset_parameters("uniform_fan_in", 0.0, 1.0)
    encoder = SpikeEncoder(type="rate", dt=1.0, t_early=0.0, t_late=1.0)
    return TimeSteppedNetwork(layers, encoder, steps=steps)


def snntorch_step(
    steps: int, device: torch.device
) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.optim.Optimizer] | None:
    """The same network in snnTorch on ``device`` (spike trains -> output spike counts) and its
    optimizer, or None when snnTorch is not installed."""
    try:
        import snntorch as snn
        from snntorch import surrogate
    except ImportError:
        return None
    grad = surrogate.fast_sigmoid(slope=SLOPE)
    fc1 = nn.Linear(SIZES[0], SIZES[1], bias=False, device=device)
    fc2 = nn.Linear(SIZES[1], SIZES[2], bias=False, device=device)
    lif1 = snn.Leaky(beta=BETA, spike_grad=grad).to(device)
    lif2 = snn.Leaky(beta=BETA, spike_grad=grad).to(device)
    params = [*fc1.parameters(), *fc2.parameters()]
    optimizer = torch.optim.Adam(params, lr=5e-4)

    def forward(spikes: torch.Tensor) -> torch.Tensor:
        mem1, mem2 = lif1.init_leaky(), lif2.init_leaky()
        counts = 0
        for t in range(steps):
            spk1, mem1 = lif1(fc1(spikes[t]), mem1)
            spk2, mem2 = lif2(fc2(spk1), mem2)
            counts = counts + spk2
        return counts

    return forward, optimizer


def open_neuromorphic_options(parser: argparse.ArgumentParser) -> None:
    """--on-neurons, --on-steps, --on-batch, --on-repeats: the Open Neuromorphic network."""
    parser.add_argument("--on-neurons", type=int, default=4096, help="0: skip it")
    parser.add_argument("--on-steps", type=int, default=500)
    parser.add_argument("--on-batch", type=int, default=16)
    parser.add_argument("--on-repeats", type=int, default=3)


def open_neuromorphic(args: argparse.Namespace, device: torch.device) -> None:
    """Time the Open Neuromorphic network for snnexp and every installed peer; print the ratios."""
    shape = (args.on_steps, args.on_batch, args.on_neurons)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
    print(f"Open Neuromorphic network: Linear({args.on_neurons}, {args.on_neurons}) + LIF, "
          f"batch {args.on_batch}, {args.on_steps} steps, forward + backward")  # fmt: skip
    ours = seconds_per_call(snnexp_step(x), args.on_repeats, device, warmup=1)
    print(f"  snnexp:               {ours * 1e3:9.1f} ms")
    for name, build in PEERS.items():
        step = build(x)
        if step is None:
            print(f"  {name}: not installed - skipped")
            continue
        theirs = seconds_per_call(step, args.on_repeats, device, warmup=1)
        print(f"  {name + ':':22}{theirs * 1e3:9.1f} ms   speed-up of snnexp: {theirs / ours:.2f}x")


def main() -> None:
    args = step_arguments(__doc__.split("\n")[0], repeats=20, more=open_neuromorphic_options)
    device = resolve_device(args.device)
    generator = torch.Generator().manual_seed(0)
    times = torch.rand((args.batch, SIZES[0]), generator=generator).to(device)
    labels = torch.randint(0, SIZES[-1], (args.batch,), generator=generator).to(device)
    model = snnexp_network(args.steps).to(device)
    model.generator = model.encoder.training_generator(generator, device, 0)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)

    def ours() -> None:
        cross_entropy_step(lambda: model(times)[0], labels, optimizer)

    seconds = seconds_per_call(ours, args.repeats, device)
    print_snnexp_step(seconds, args.batch, device)

    def encode() -> torch.Tensor:
        return model.encoder(times, 0, args.steps, model.generator)

    encoding = seconds_per_call(encode, args.repeats, device)
    where = model.generator.device.type
    print(f"          of which {encoding * 1e3:.1f} ms the input spikes (drawn on the {where})")
    other = snntorch_step(args.steps, device)
    theirs = None
    if other is not None:
        forward, their_optimizer = other

        def theirs() -> None:
            cross_entropy_step(lambda: forward(encode()), labels, their_optimizer)

    compare_with_snntorch(seconds, theirs, args.batch, args.repeats, device)
    if args.on_neurons:
        open_neuromorphic(args, device)


if __name__ == "__main__":
    main()
