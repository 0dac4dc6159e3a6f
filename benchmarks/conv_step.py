"""Time one BPTT training step of the convolutional MNIST network of snnTorch's tutorial 6.

    python benchmarks/conv_step.py [--batch 128] [--steps 25] [--repeats 10] [--device auto]

The network is 12C5-MP2-64C5-MP2-FC10 with leaky neurons (decay 0.5 per step, subtractive
reset, fast-sigmoid surrogate of slope 25) after each pooling and the dense layer, the image
as input current in every step (``direct`` encoding), cross-entropy on the output spike counts.
snnexp builds it from ``model.blocks`` (a graph of blocks). When snnTorch is installed
(``pip install '.[bench]'``), the identical network (``nn.Sequential`` with
``snn.Leaky(init_hidden=True)``, one call per step as in the tutorial) is timed in the same run
and the ratio printed (> 1: snnexp is faster).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from timing import (
    compare_with_snntorch,
    cross_entropy_step,
    print_snnexp_step,
    seconds_per_call,
    step_arguments,
)
from torch import nn

from snnexp.config import config_from_dict
from snnexp.graph import GraphNetwork
from snnexp.run.build import build_network, resolve_device

BETA = 0.5
SLOPE = 25.0
BLOCKS = [
    {"type": "conv2d", "channels": 12, "kernel": 5},
    {"type": "max_pool2d", "kernel": 2},
    {"type": "neurons"},
    {"type": "conv2d", "channels": 64, "kernel": 5},
    {"type": "max_pool2d", "kernel": 2},
    {"type": "neurons"},
    {"type": "flatten"},
    {"type": "linear", "features": 10},
    {"type": "neurons"},
]


def snnexp_network(steps: int) -> GraphNetwork:
    """The tutorial's network as a snnexp graph, through the config like a user's."""
    cfg = config_from_dict(
        {
            "dataset": {"name": "mnist", "encoding": {"type": "direct", "t_early": 0.0}},
            "model": {
                "neuron": {"type": "leaky", "tau_mem": -1.0 / math.log(BETA)},
                "dtype": "float32",
                "dt": 1.0,
                "sim_time": float(steps),
                "readout": "spike_count",
                "blocks": BLOCKS,
            },
            "learning": {
                "rule": "bptt",
                "loss": {"type": "cross_entropy"},
                "surrogate": {"type": "fast_sigmoid", "slope": SLOPE},
            },
        }
    )
    network = build_network(cfg, torch.Generator().manual_seed(0))
    assert isinstance(network, GraphNetwork)
    return network


def snntorch_step(
    steps: int, device: torch.device
) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.optim.Optimizer] | None:
    """The tutorial's snnTorch network on ``device`` (images -> output spike counts over the
    steps) and its optimizer; None without snnTorch."""
    try:
        import snntorch as snn
        from snntorch import surrogate, utils
    except ImportError:
        return None
    grad = surrogate.fast_sigmoid(slope=SLOPE)
    net = nn.Sequential(
        nn.Conv2d(1, 12, 5),
        nn.MaxPool2d(2),
        snn.Leaky(beta=BETA, spike_grad=grad, init_hidden=True),
        nn.Conv2d(12, 64, 5),
        nn.MaxPool2d(2),
        snn.Leaky(beta=BETA, spike_grad=grad, init_hidden=True),
        nn.Flatten(),
        nn.Linear(64 * 4 * 4, 10),
        snn.Leaky(beta=BETA, spike_grad=grad, init_hidden=True, output=True),
    ).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)

    def forward(images: torch.Tensor) -> torch.Tensor:
        utils.reset(net)
        counts = 0
        for _ in range(steps):
            spikes, _ = net(images)
            counts = counts + spikes
        return counts

    return forward, optimizer


def main() -> None:
    args = step_arguments(__doc__.split("\n")[0], repeats=10)
    device = resolve_device(args.device)
    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand((args.batch, 784), generator=generator)
    times = (2.0 * (1.0 - pixels)).to(device)
    labels = torch.randint(0, 10, (args.batch,), generator=generator).to(device)
    model = snnexp_network(args.steps).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)

    def ours() -> None:
        cross_entropy_step(lambda: model(times)[0], labels, optimizer)

    seconds = seconds_per_call(ours, args.repeats, device)
    print_snnexp_step(seconds, args.batch, device)
    other = snntorch_step(args.steps, device)
    theirs = None
    if other is not None:
        images = pixels.reshape(-1, 1, 28, 28).to(device)
        forward, their_optimizer = other

        def theirs() -> None:
            cross_entropy_step(lambda: forward(images), labels, their_optimizer)

    compare_with_snntorch(seconds, theirs, args.batch, args.repeats, device)


if __name__ == "__main__":
    main()
