"""Cost of ``training.thread_independent``: the same BPTT training step with plain products and
with products in a fixed partition, timed alternately in one process.

    python benchmarks/thread_independence.py [--workload bptt|conv|graph] [--repeats 20]

``bptt``: the 784-1000-10 leaky network of ``bptt_step.py`` (25 steps, batch 128); ``conv``: the
12C5-MP2-64C5-MP2-FC10 network of ``conv_step.py``; ``graph``: ``yin_yang_graph.yaml`` (60
steps, batch 50, three recurrent populations). Blocks of steps of the two networks alternate, so
that a change of the machine's load hits both alike; the medians are printed and their ratio.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from bptt_step import snnexp_network as bptt_network
from conv_step import snnexp_network as conv_network
from timing import cross_entropy_step

from snnexp.config import load_config
from snnexp.functional.threads import torch_single_threaded
from snnexp.run.build import build_network

BLOCK = 4
"""Steps of one network in a row (after one untimed step: torch's idle threads of the other
network's steps may still spin)."""
GRAPH_CONFIG = Path(__file__).parent.parent / "experiment_configs" / "yin_yang_graph.yaml"


def workload(name: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The network, a batch of input times and its labels of workload ``name`` (the same in
    every process: the stack and conv networks initialise from torch's global generator)."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    if name == "bptt":
        model, times = bptt_network(25), torch.rand((128, 784), generator=generator)
        model.generator = generator
        labels = torch.randint(0, 10, (128,), generator=generator)
    elif name == "conv":
        model = conv_network(25)
        times = 2.0 * (1.0 - torch.rand((128, 784), generator=generator))
        labels = torch.randint(0, 10, (128,), generator=generator)
    else:
        cfg = load_config(GRAPH_CONFIG)
        model = build_network(cfg, generator)
        times = 0.15 + 1.85 * torch.rand((cfg.training.batch_size, 4), generator=generator)
        labels = torch.randint(0, 3, (cfg.training.batch_size,), generator=generator)
    return model, times, labels


def training_step(
    model: torch.nn.Module, times: torch.Tensor, labels: torch.Tensor, fixed: bool
) -> Callable[[], None]:
    """One Adam step of ``model`` on the batch; ``fixed``: as ``training.thread_independent``
    runs it (torch on one thread, the large products in fixed parts on all)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        with torch_single_threaded() if fixed else nullcontext():
            cross_entropy_step(lambda: model(times)[0], labels, optimizer)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=["bptt", "conv", "graph"], default="bptt")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    plain, times, labels = workload(args.workload)
    fixed = copy.deepcopy(plain)
    fixed.use_fixed_partition()
    steps = {
        "plain": training_step(plain, times, labels, fixed=False),
        "fixed": training_step(fixed, times, labels, fixed=True),
    }
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats // BLOCK):
        for name, step in steps.items():
            step()
            for _ in range(BLOCK):
                started = time.perf_counter()
                step()
                seconds[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    fastest = {name: min(values) for name, values in seconds.items()}
    steps_each = len(seconds["plain"])
    print(f"{args.workload}: torch threads {torch.get_num_threads()}, {steps_each} steps each")
    for name, value in medians.items():
        print(f"  {name:6s} {value * 1e3:8.1f} ms/step median, {fastest[name] * 1e3:8.1f} fastest")
    for what, times in (("median", medians), ("fastest", fastest)):
        cost = 100 * (times["fixed"] / times["plain"] - 1)
        print(f"  cost of the fixed partition ({what}): {cost:+.1f} %")


if __name__ == "__main__":
    main()
