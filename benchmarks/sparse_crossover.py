"""Dense vs sparse weight matrices for the input projection of a rewired layer.

    python benchmarks/sparse_crossover.py [--rows 3200] [--n-in 784] [--n-out 1000] [--device auto]

Times ``spikes @ W`` (forward) and forward + backward (gradient for W's active entries) with W
dense and with W as a sparse COO matrix (``torch.sparse.mm``), at connectivities from 1 % to
100 %, on the CPU or a CUDA GPU (``--device``, default: CUDA when available). The rows
default to a BPTT batch: 25 steps x 128 samples.
The crossover (the highest connectivity at which sparse is faster) is printed; snnexp keeps
rewired matrices dense where dense is faster.
"""

from __future__ import annotations

import argparse

import torch
from timing import seconds_per_call

from snnexp.run.build import resolve_device

DENSITIES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def time_density(
    spikes: torch.Tensor, weight: torch.Tensor, repeats: int, device: torch.device
) -> list[float]:
    """ms per call: dense forward, sparse forward, dense forward + backward, sparse f + b."""
    dense = weight.clone().requires_grad_(True)
    sparse_t = weight.t().to_sparse().coalesce().requires_grad_(True)
    spikes_t = spikes.t().contiguous()

    def dense_fwd() -> torch.Tensor:
        with torch.no_grad():
            return spikes @ dense

    def sparse_fwd() -> torch.Tensor:
        with torch.no_grad():
            return torch.sparse.mm(sparse_t, spikes_t)

    def dense_train() -> None:
        (spikes @ dense).sum().backward()

    def sparse_train() -> None:
        torch.sparse.mm(sparse_t, spikes_t).sum().backward()

    calls = (dense_fwd, sparse_fwd, dense_train, sparse_train)
    return [seconds_per_call(f, repeats, device) * 1e3 for f in calls]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=3200)
    parser.add_argument("--n-in", type=int, default=784)
    parser.add_argument("--n-out", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    generator = torch.Generator().manual_seed(0)
    spikes = (torch.rand(args.rows, args.n_in, generator=generator) < 0.15).float().to(device)
    print(
        f"device {device}, torch threads {torch.get_num_threads()}; "
        f"spikes ({args.rows}, {args.n_in}) @ W ({args.n_in}, {args.n_out}); ms per call"
    )
    print(
        f"{'connectivity':>12} {'dense fwd':>10} {'sparse fwd':>10} {'dense f+b':>10} "
        f"{'sparse f+b':>10}"
    )
    crossover = None
    for density in DENSITIES:
        mask = torch.rand(args.n_in, args.n_out, generator=generator) < density
        weight = (torch.randn(args.n_in, args.n_out, generator=generator) * mask).to(device)
        row = time_density(spikes, weight, args.repeats, device)
        print(f"{density:>12.0%} {row[0]:>10.1f} {row[1]:>10.1f} {row[2]:>10.1f} {row[3]:>10.1f}")
        if row[3] < row[2]:
            crossover = density
    if crossover is None:
        print("dense is faster for training at every connectivity measured")
    else:
        print(f"sparse training is faster up to {crossover:.0%} connectivity")


if __name__ == "__main__":
    main()
