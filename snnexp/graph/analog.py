"""The artificial (analog) network of a graph of blocks: what ``learning.rule: ann`` trains.

The same blocks as the spiking graph (:class:`~snnexp.graph.network.GraphNetwork`), with the same
parameter names, computed once per sample instead of once per step: the input is the intensity
that the latency code stands for (as with ``dataset.encoding.type: direct``), each hidden
``neurons`` block is a rectified linear unit,

    a = max(0, x),

or, with the block's ``clamp`` beta > 0, the clamped ReLU of the TensorFlow SNN toolbox's
``ttfs_clamped`` code (Keras' ``relu(x, threshold=beta)``),

    a = x if x > beta else 0,

and the label layer (the last ``neurons`` block) passes its input through as the scores. Such a
network is the starting point of ANN -> SNN conversion, where each ReLU becomes a population of
spiking neurons whose rate (or first spike time) codes a.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from snnexp.data.encoding import intensity
from snnexp.graph.blocks import Block, Neurons
from snnexp.graph.spec import INPUT, GraphSpec


class AnalogNetwork(nn.Module):
    """A feed-forward graph of blocks as a ReLU network.

    ``forward`` maps input spike times ``(batch, values)`` to the scores ``(batch, classes)``
    and, like the spiking networks, a list of hidden quantities (empty: an ANN has no spike
    counts). ``t_early`` and ``t_late`` are those of the dataset's latency code.
    """

    def __init__(
        self, spec: GraphSpec, blocks: Mapping[str, Block], t_early: float, t_late: float
    ) -> None:
        super().__init__()
        self.spec = spec
        self.blocks = nn.ModuleDict(dict(blocks))
        self.t_early, self.t_late = t_early, t_late
        self.order = [name for component in spec.schedule for name in component]

    def activations(self, input_times: torch.Tensor) -> dict[str, torch.Tensor]:
        """The output of every block ``(batch, *shape)`` (the label layer's: the scores)."""
        batch = input_times.shape[0]
        values = {
            INPUT: intensity(input_times, self.t_early, self.t_late).reshape(
                batch, *self.spec.input_shape
            )
        }
        for name in self.order:
            edges = self.spec.blocks[name].inputs
            x = values[edges[0].source]
            for edge in edges[1:]:
                x = x + values[edge.source]
            block = self.blocks[name]
            if not isinstance(block, Neurons):
                values[name] = block.apply(x)
            elif name == self.spec.output:
                values[name] = x.reshape(batch, -1)
            else:
                clamp = self.spec.blocks[name].params["clamp"]
                values[name] = x * (x > clamp) if clamp else torch.relu(x)
        return values

    def forward(self, input_times: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Input spike times ``(batch, values)`` -> (scores, [])."""
        return self.activations(input_times)[self.spec.output], []
