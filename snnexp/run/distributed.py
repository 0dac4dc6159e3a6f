"""Data-parallel training under ``torchrun``: one process per rank, each a shard of every batch.

``torchrun --nproc-per-node N -m snnexp train CONFIG`` sets WORLD_SIZE, RANK and LOCAL_RANK;
:func:`init_world` joins the process group (gloo on the CPU, NCCL on GPUs). Every rank builds the
same network from the same seed and draws the same batch order from the same generator; rank r
trains on the rows :func:`shard_bounds` gives it of each batch. Gradients are averaged by
DistributedDataParallel, and each rank's loss is scaled so that the average equals the gradient of
the whole batch's mean loss:

    L_r = (N / B) n_r mean_{i in shard r} l_i,   (1/N) sum_r grad L_r = grad (1/B) sum_i l_i

(B the batch, n_r its rows on rank r, N the world size; the firing-rate regulariser is taken over
the whole batch, see :func:`shard_loss`). What decides on the whole batch (weight
bumping's missing spikes, the accuracy counts, the logged loss, a stop signal) is gathered from
all ranks first, so every rank makes the same decision and the weights stay identical. Rank 0
alone writes the result folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from snnexp.errors import SnnexpError
from snnexp.losses.readout import rate_penalty

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel ranks (one rank when not under torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        return f"data-parallel over {self.size} processes ({self.backend})"


SINGLE = World()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_world(device_name: str) -> World:
    """Join the process group torchrun set up (a single process: :data:`SINGLE`). NCCL when the
    run trains on CUDA (``device_name`` auto or cuda, and a GPU present), else gloo."""
    if not launched_by_torchrun():
        return SINGLE
    if not dist.is_available():
        raise SnnexpError("this torch build has no torch.distributed; train in one process")
    cuda = device_name != "cpu" and torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return World(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def close_world(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def shard_bounds(rows: int, world: World) -> tuple[int, int]:
    """The contiguous rows [start, stop) of a batch of ``rows`` that ``world.rank`` trains on;
    shard sizes differ by at most one."""
    base, extra = divmod(rows, world.size)
    start = world.rank * base + min(world.rank, extra)
    return start, start + base + (1 if world.rank < extra else 0)


def _device(world: World) -> torch.device:
    return (
        torch.device("cuda", world.local_rank) if world.backend == "nccl" else torch.device("cpu")
    )


def sum_over_ranks(values: list[float], world: World) -> list[float]:
    """Each value summed over all ranks (float64)."""
    if not world.active:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=_device(world))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def any_rank(flag: bool, world: World) -> bool:
    """Whether ``flag`` holds on any rank."""
    return sum_over_ranks([float(flag)], world)[0] > 0 if world.active else flag


def gather_rows(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The rows of all ranks' ``tensor`` in rank order (the whole batch again)."""
    if not world.active:
        return tensor
    counts = [int(c) for c in sum_over_ranks(_one_hot(tensor.shape[0], world), world)]
    padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    device = _device(world)
    parts = [torch.empty_like(padded, device=device) for _ in range(world.size)]
    dist.all_gather(parts, padded.to(device))
    return torch.cat([part[:count] for part, count in zip(parts, counts, strict=True)]).to(
        tensor.device
    )


def _one_hot(count: int, world: World) -> list[float]:
    values = [0.0] * world.size
    values[world.rank] = float(count)
    return values


def broadcast_object(value: object, world: World) -> object:
    """Rank 0's ``value`` on every rank."""
    if not world.active:
        return value
    box = [value if world.is_main else None]
    dist.broadcast_object_list(box, src=0, device=_device(world))
    return box[0]


def shard_loss(
    loss_fn: Any,
    outputs: torch.Tensor,
    hidden: list[torch.Tensor],
    labels: torch.Tensor,
    rows: int,
    world: World,
) -> tuple[torch.Tensor, float]:
    """This rank's loss, whose gradients DistributedDataParallel averages into the gradient of
    the whole batch's (``rows`` samples) loss, and the value of that loss:

        L_r = (N n_r / B) l(shard r) + N lambda P(rates of the whole batch)

    where the rates of the firing-rate regulariser P (``loss_fn.rate_regularization`` = lambda)
    are the batch means over all ranks' spike counts, only this rank's own counts carrying
    gradients: the sum over ranks of their gradients is the gradient of lambda P."""
    share = len(labels) / rows
    regularised = getattr(loss_fn, "rate_regularization", 0.0) > 0 and bool(hidden)
    data_loss = loss_fn.training_loss(outputs, [] if regularised else hidden, labels)
    value = sum_over_ranks([data_loss.item() * share], world)[0]
    loss = data_loss * (share * world.size)
    if regularised:
        means = [batch_mean(counts, rows, world).unsqueeze(0) for counts in hidden]
        penalty = loss_fn.rate_regularization * rate_penalty(
            means, loss_fn.steps, loss_fn.target_rate, loss_fn.rate_reduction
        )
        value += penalty.item()
        loss = loss + penalty * world.size
    return loss, value


def batch_mean(rows_of_rank: torch.Tensor, rows: int, world: World) -> torch.Tensor:
    """The mean over the whole batch (all ranks' rows, ``rows`` in all) along dim 0; only this
    rank's rows carry gradients."""
    local = rows_of_rank.sum(dim=0)
    total = local.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return (local + (total - local.detach())) / rows


def check_batches(batch_size: int, samples: int, world: World) -> None:
    """Every rank needs at least one row of every batch (the last one included)."""
    if not world.active:
        return
    last = samples % batch_size
    if batch_size < world.size or 0 < last < world.size:
        raise SnnexpError(
            f"training.batch_size {batch_size} over {samples} training samples leaves a batch "
            f"of fewer than {world.size} rows (one per rank); choose a batch size of at least "
            f"{world.size} whose last batch has at least {world.size} rows, or fewer processes"
        )
