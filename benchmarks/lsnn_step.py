"""Time one LSNN training iteration: forward, backward and optimizer step of a batch.

    python benchmarks/lsnn_step.py [CONFIG] [--data-dir DIR] [--batch 256] [--repeats 5]

CONFIG defaults to experiment_configs/seq_mnist_lsnn.yaml (batch 256, 840 steps). The batch is
the first one of the training split when the data is found (``--data-dir``, else the config's
data root), else synthetic digits (a random stroke per image) with a note. The last line reads
``seconds per iteration: X``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from timing import peak_memory_text, seconds_per_call

from snnexp.config import load_config
from snnexp.data.encoding import latency_encode
from snnexp.data.splits import load_split
from snnexp.errors import DataError
from snnexp.rules.bptt import build_loss, build_network
from snnexp.run.build import build_optimizer, resolve_device

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "experiment_configs/seq_mnist_lsnn.yaml"


def synthetic_digits(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Latency-coded 28 x 28 images, each a bright random stroke (about as many pixels lit as
    an MNIST digit), ``(batch, 784)``."""
    images = torch.zeros(batch, 28, 28, dtype=torch.float64)
    for image in images:
        row, col = torch.randint(6, 22, (2,), generator=generator).tolist()
        drow, dcol = torch.randint(-1, 2, (2,), generator=generator).tolist()
        for k in range(12):
            r, c = row + drow * k // 2, col + dcol * k // 2
            image[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] = 1.0
    return latency_encode(1.0 - images.view(batch, -1) * 255 / 256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch", type=int, default=None, help="default: the config's")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    cfg = load_config(args.config)
    batch = args.batch or cfg.training.batch_size
    device = resolve_device(args.device)
    generator = torch.Generator().manual_seed(0)
    model = build_network(cfg, generator).to(device)
    model.generator = generator
    loss_fn = build_loss(cfg)
    optimizer = build_optimizer(cfg, model)
    try:
        split = load_split(cfg.dataset, "train", args.data_dir)
        times, labels = split.input_times[:batch], split.labels[:batch]
        source = "the first training batch"
    except DataError:
        times = synthetic_digits(batch, generator)
        labels = torch.randint(10, (batch,), generator=generator)
        source = "synthetic digits (no MNIST found; --data-dir DIR)"
    times = times.to(device, torch.float32 if cfg.model.dtype == "float32" else torch.float64)
    labels = labels.to(device)

    def iteration() -> None:
        optimizer.zero_grad()
        scores, hidden = model(times)
        loss_fn.training_loss(scores, hidden, labels).backward()
        optimizer.step()

    seconds = seconds_per_call(iteration, args.repeats, device, warmup=1)
    print(f"config: {args.config}; batch {batch} of {source}; device {device}")
    print(f"threads: {torch.get_num_threads()}; {peak_memory_text(device)}")
    print(f"seconds per iteration: {seconds:.3f}")


if __name__ == "__main__":
    main()
