"""Evaluating a network on an encoded split: loss, accuracy, outputs and hidden activity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from snnexp.data import EncodedSplit
from snnexp.losses import Loss
from snnexp.modules.modes import evaluation_mode

MAX_SAVED_HIDDEN_VALUES = 5_000_000


@dataclass
class EvalResult:
    """Outputs of a network on a whole split (tensors on the CPU). ``hidden`` holds None for a
    layer with more than MAX_SAVED_HIDDEN_VALUES values over the split (not kept, not saved)."""

    loss: float
    accuracy: float
    outputs: torch.Tensor
    hidden: list[torch.Tensor | None]
    predictions: torch.Tensor
    labels: torch.Tensor
    hidden_means: list[torch.Tensor | None] = field(default_factory=list)
    """For each layer not kept in ``hidden``, its mean over the samples ``(n,)``."""


Forward = Callable[[torch.Tensor], tuple[torch.Tensor, list[torch.Tensor]]]
"""Input spike times of a batch -> (label outputs, hidden activity per layer)."""


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loss_fn: Loss,
    split: EncodedSplit,
    batch_size: int,
    forward: Forward | None = None,
) -> EvalResult:
    """Loss (mean over samples) and accuracy of ``model`` on ``split``, in batches, with the
    model in evaluation mode (no dropout; its mode is restored afterwards).

    ``outputs`` are the label spike times (first-spike networks) or the read-out scores
    (time-stepped and analog networks), ``hidden`` the hidden layers' spike times or spike
    counts. ``forward`` replaces the model's own (to gather more from the same pass).
    """
    with evaluation_mode(model):
        return _evaluate(forward or model, loss_fn, split, batch_size)


def _evaluate(model: Forward, loss_fn: Loss, split: EncodedSplit, batch_size: int) -> EvalResult:
    outputs, losses = [], []
    hidden: list[list[torch.Tensor] | None] = []
    sums: list[torch.Tensor | float | None] = []
    n_samples = len(split.labels)
    for start in range(0, n_samples, batch_size):
        times = split.input_times[start : start + batch_size]
        labels = split.labels[start : start + batch_size]
        out, hid = model(times)
        losses.append(loss_fn.per_sample(out, labels))
        outputs.append(out)
        if not hidden:
            hidden = [
                [] if layer[0].numel() * n_samples <= MAX_SAVED_HIDDEN_VALUES else None
                for layer in hid
            ]
            sums = [0.0 if kept is None else None for kept in hidden]
        for k, (kept, layer) in enumerate(zip(hidden, hid, strict=True)):
            if kept is not None:
                kept.append(layer)
            else:
                sums[k] = sums[k] + layer.sum(dim=0)
    label_outputs = torch.cat(outputs).cpu()
    predictions = loss_fn.predict(label_outputs)
    labels = split.labels.cpu()
    return EvalResult(
        loss=torch.cat(losses).mean().item(),
        accuracy=(predictions == labels).double().mean().item(),
        outputs=label_outputs,
        hidden=[None if layer is None else torch.cat(layer).cpu() for layer in hidden],
        predictions=predictions,
        labels=labels,
        hidden_means=[None if total is None else (total / n_samples).cpu() for total in sums],
    )
