"""Networks as graphs of blocks (conv, pooling, neurons, delays, cycles) run over time.

:mod:`~snnexp.graph.blocks` defines the block types, :mod:`~snnexp.graph.spec` reads and
checks ``model.blocks`` into a schedule, :mod:`~snnexp.graph.network` runs it and
:mod:`~snnexp.graph.build` builds it from a config.
"""

from snnexp.graph.network import Constant, GraphNetwork
from snnexp.graph.spec import Edge, GraphError, GraphSpec, parse_blocks

__all__ = ["Constant", "Edge", "GraphError", "GraphNetwork", "GraphSpec", "parse_blocks"]
