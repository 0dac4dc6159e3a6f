"""Losses of time-stepped (BPTT) networks on the read-out scores of the label layer
(:class:`ReadoutLoss`), with the prediction that goes with them."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def predict_unique_max(scores: torch.Tensor) -> torch.Tensor:
    """Class of the highest score; -1 where several classes share it (e.g. no label spike)."""
    top = scores.topk(2, dim=1) if scores.shape[1] > 1 else None
    best = scores.argmax(dim=1)
    if top is None:
        return best
    tied = top.values[:, 0] == top.values[:, 1]
    return torch.where(tied, torch.full_like(best, -1), best)


def rate_penalty(
    counts: list[torch.Tensor], steps: int, target: float, reduction: str = "mean"
) -> torch.Tensor:
    """mean (``reduction: sum``: sum, as LSNN's code) over hidden neurons of (r_j - target)^2,
    r_j = spikes per step of neuron j averaged over the batch (LSNN's firing-rate
    regulariser)."""
    rates = torch.cat([layer.mean(dim=0) for layer in counts]) / steps
    squares = (rates - target) ** 2
    return squares.sum() if reduction == "sum" else squares.mean()


@dataclass(frozen=True)
class ReadoutLoss:
    """A loss on the read-out scores of a time-stepped network.

    ``cross_entropy``: -log softmax(scores)_n. ``mse_count``: 1/2 sum_k (s_k - c_k)^2 with
    targets c_k = count_correct x window steps for the true class and count_wrong x window
    steps for the others (the spike-count targets of snnTorch's mse_count_loss). Training adds
    ``rate_regularization`` x :func:`rate_penalty` of the hidden layers.
    """

    type: str = "cross_entropy"
    window_steps: int = 1
    steps: int = 1
    count_correct: float = 0.8
    count_wrong: float = 0.2
    rate_regularization: float = 0.0
    target_rate: float = 0.02
    rate_reduction: str = "mean"

    output_key = "output_scores"
    hidden_key = "hidden_counts"

    def per_sample(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of each sample, (batch,)."""
        if self.type == "cross_entropy":
            return torch.nn.functional.cross_entropy(scores, labels, reduction="none")
        if self.type == "mse_count":
            target = torch.full_like(scores, self.count_wrong * self.window_steps)
            target.scatter_(1, labels.unsqueeze(1), self.count_correct * self.window_steps)
            return 0.5 * ((scores - target) ** 2).sum(dim=1)
        raise ValueError(f"unknown loss type {self.type!r}; available: cross_entropy, mse_count")

    def __call__(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.per_sample(scores, labels).mean()

    def training_loss(
        self, scores: torch.Tensor, hidden: list[torch.Tensor], labels: torch.Tensor
    ) -> torch.Tensor:
        """Batch loss plus the firing-rate regulariser of the hidden layers."""
        loss = self(scores, labels)
        if self.rate_regularization > 0 and hidden:
            loss = loss + self.rate_regularization * rate_penalty(
                hidden, self.steps, self.target_rate, self.rate_reduction
            )
        return loss

    def predict(self, scores: torch.Tensor) -> torch.Tensor:
        """Predicted class per sample, -1 on a tie for the highest score."""
        return predict_unique_max(scores)
