"""ANN training (``learning.rule: ann``): the ReLU network of ``model.blocks``
(:class:`~snnexp.graph.analog.AnalogNetwork`), cross-entropy on its scores."""

from __future__ import annotations

import torch

from snnexp.config import ExperimentConfig
from snnexp.graph.analog import AnalogNetwork
from snnexp.graph.build import build_blocks
from snnexp.losses.readout import ReadoutLoss


def build_network(
    cfg: ExperimentConfig, generator: torch.Generator | None = None, training: bool = True
) -> AnalogNetwork:
    """The ANN of ``cfg.model.blocks``, weights drawn as for the spiking graph of the same
    blocks (the same for training and evaluation)."""
    spec, blocks = build_blocks(cfg, generator)
    encoding = cfg.dataset.encoding
    return AnalogNetwork(spec, blocks, encoding.t_early, encoding.t_late)


def build_loss(cfg: ExperimentConfig) -> ReadoutLoss:
    """Cross-entropy on the scores."""
    return ReadoutLoss(type=cfg.learning.loss.type)
