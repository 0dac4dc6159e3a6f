"""Losses: on first-spike times (:mod:`.spike_time`) and on read-out scores (:mod:`.readout`)."""

from snnexp.losses.readout import ReadoutLoss
from snnexp.losses.spike_time import SpikeTimeLoss

Loss = SpikeTimeLoss | ReadoutLoss
"""Either loss: both predict classes, give a training loss and name their saved outputs."""
