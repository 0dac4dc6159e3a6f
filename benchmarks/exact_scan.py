"""Time the exact first-spike (ET) layer on the first layer of an MNIST-family config.

    python benchmarks/exact_scan.py experiment_configs/16x16_mnist.yaml --data-dir ../shared/data
    python benchmarks/exact_scan.py experiment_configs/mnist.yaml --data-dir ../shared/data \
        [--weights ../shared/reference/mnist_et_150epochs/weights_layer0.npy] [--torch-engine]

Runs the first layer on training-size batches of test images with the config's input noise
(forward, then backward of the summed spike times, with the config's max_dw_norm) and on one
evaluation batch, and prints the median milliseconds. Weights: the config's initialisation, or
trained weights from a .npy file (trained networks spike later and scan further). One thread
unless OMP_NUM_THREADS says otherwise. On the CPU the compiled kernels run, or with
--torch-engine the vectorised torch engine that GPUs use; ``--device cuda`` (or ``auto``) runs
on the GPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from timing import synchronize

from snnexp.config import load_config
from snnexp.data import load_split
from snnexp.functional.event import scan
from snnexp.functional.event.et import first_spike_et
from snnexp.rules.first_spike import neuron_params
from snnexp.run.build import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--weights", type=Path, default=None, help="(n_in, n_out) .npy")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--torch-engine", action="store_true", help="not the compiled kernels")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    scan.COMPILED_CPU_SCAN = not args.torch_engine
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    cfg = load_config(args.config)
    test = load_split(cfg.dataset, "test", data_dir=args.data_dir)
    generator = torch.Generator().manual_seed(0)
    n_in, n_out = test.input_times.shape[1], cfg.model.layer_sizes[0]
    if args.weights is not None:
        weights = torch.tensor(np.load(args.weights))
    else:
        weights = cfg.model.weight_mean[0] + cfg.model.weight_std[0] * torch.randn(
            n_in, n_out, generator=generator, dtype=torch.float64
        )
    weights = weights.to(device).requires_grad_(True)
    inputs = test.input_times.to(device)
    params = neuron_params(cfg)
    batch, noise = cfg.training.batch_size, cfg.training.input_noise.std

    forward, backward = [], []
    for k in range(args.batches):
        times = inputs[k * batch : (k + 1) * batch]
        times = (times + noise * torch.randn(times.shape, generator=generator).to(device)).abs()
        synchronize(device)
        started = time.perf_counter()
        out = first_spike_et(times, weights, params, cfg.training.max_dw_norm)
        synchronize(device)
        middle = time.perf_counter()
        torch.where(torch.isfinite(out), out, 0.0).sum().backward()
        synchronize(device)
        forward.append(middle - started)
        backward.append(time.perf_counter() - middle)
    with torch.no_grad():
        started = time.perf_counter()
        out = first_spike_et(inputs[: cfg.training.batch_size_eval], weights, params, None)
        synchronize(device)
        evaluation = time.perf_counter() - started

    print(
        f"{cfg.name} on {device}: first layer {n_in} -> {n_out}, batch {batch}, input noise {noise}"
    )
    print(f"  forward  {1e3 * statistics.median(forward):7.1f} ms (median of {args.batches})")
    print(f"  backward {1e3 * statistics.median(backward):7.1f} ms")
    print(
        f"  forward of an evaluation batch of {cfg.training.batch_size_eval}: "
        f"{1e3 * evaluation:.1f} ms; {100 * torch.isfinite(out).double().mean():.1f} % spike"
    )


if __name__ == "__main__":
    main()
