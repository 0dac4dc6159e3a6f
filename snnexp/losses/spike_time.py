"""Losses on label-layer first-spike times (:class:`SpikeTimeLoss`) and the class read-out that
goes with each.

A sample whose chosen label neuron did not spike (+inf) is never counted correct: its predicted
class is -1. A sample whose loss is undefined because spikes are missing (the true label neuron
for ``ttfs``, any label neuron for ``mse``) gets the constant loss 100 and no gradient, as in the
published code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MISSING_SPIKE_LOSS = 100.0


def _valid_or_minus_one(times: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    spiked = torch.isfinite(times.gather(1, chosen.unsqueeze(1)).squeeze(1))
    return torch.where(spiked, chosen, torch.full_like(chosen, -1))


def predict_earliest(times: torch.Tensor) -> torch.Tensor:
    """Class = earliest label spike; -1 where no label neuron spiked."""
    return _valid_or_minus_one(times, times.argmin(dim=1))


def predict_closest(times: torch.Tensor, t_correct: float) -> torch.Tensor:
    """Class = label neuron closest to the target time t_correct; -1 if that one did not spike."""
    return _valid_or_minus_one(times, (times - t_correct).abs().argmin(dim=1))


def ttfs_loss(
    times: torch.Tensor, labels: torch.Tensor, tau_syn: float, xi: float, alpha: float, beta: float
) -> torch.Tensor:
    """Per-sample time-to-first-spike loss (Goeltz, Kriener et al. 2021):

        L = -log(exp(-t_n/(xi tau_s)) / sum_k exp(-t_k/(xi tau_s))) + alpha exp(t_n/(beta tau_s))

    with n the true label: a cross-entropy over the softmax of negative spike times plus a term
    that pulls the correct spike early.
    """
    true_time = times.gather(1, labels.unsqueeze(1)).squeeze(1)
    defined = torch.isfinite(true_time)
    safe_times = torch.where(defined.unsqueeze(1), times, torch.zeros_like(times))
    safe_true = torch.where(defined, true_time, torch.zeros_like(true_time))
    scale = xi * tau_syn
    loss = (
        torch.logsumexp(-safe_times / scale, dim=1)
        + safe_true / scale
        + alpha * torch.exp(safe_true / (beta * tau_syn))
    )
    return torch.where(defined, loss, torch.full_like(loss, MISSING_SPIKE_LOSS))


def mse_loss(
    times: torch.Tensor, labels: torch.Tensor, tau_syn: float, t_correct: float, t_wrong: float
) -> torch.Tensor:
    """Per-sample L = 1/2 sum_k (t_k - target_k)^2, target t_correct tau_s for the true label
    neuron and t_wrong tau_s for the others."""
    target = torch.full_like(times, t_wrong * tau_syn)
    target.scatter_(1, labels.unsqueeze(1), t_correct * tau_syn)
    defined = torch.isfinite(times).all(dim=1)
    safe_times = torch.where(defined.unsqueeze(1), times, target)
    loss = 0.5 * ((safe_times - target) ** 2).sum(dim=1)
    return torch.where(defined, loss, torch.full_like(loss, MISSING_SPIKE_LOSS))


@dataclass(frozen=True)
class SpikeTimeLoss:
    """A configured loss: ``loss(times, labels)`` is the batch mean, ``predict(times)`` the
    predicted classes."""

    type: str
    tau_syn: float = 1.0
    xi: float = 0.2
    alpha: float = 0.005
    beta: float = 1.0
    t_correct: float = 1.0
    t_wrong: float = 2.0

    def per_sample(self, times: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of each sample, (batch,)."""
        if self.type == "ttfs":
            return ttfs_loss(times, labels, self.tau_syn, self.xi, self.alpha, self.beta)
        if self.type == "mse":
            return mse_loss(times, labels, self.tau_syn, self.t_correct, self.t_wrong)
        raise ValueError(f"unknown loss type {self.type!r}; available: ttfs, mse")

    output_key = "output_times"
    hidden_key = "hidden_times"

    def __call__(self, times: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.per_sample(times, labels).mean()

    def training_loss(
        self, times: torch.Tensor, hidden: list[torch.Tensor], labels: torch.Tensor
    ) -> torch.Tensor:
        """The batch loss that training minimises (hidden times do not enter it)."""
        return self(times, labels)

    def predict(self, times: torch.Tensor) -> torch.Tensor:
        """Predicted class per sample, -1 where the chosen label neuron did not spike."""
        if self.type == "mse":
            return predict_closest(times, self.t_correct * self.tau_syn)
        return predict_earliest(times)
