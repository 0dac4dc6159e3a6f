"""A drawing of a network's graph of blocks (``model.blocks``), from the run's config alone."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from snnexp.graph.spec import INPUT, GraphSpec
from snnexp.plots.run import FigureJob, Run
from snnexp.plots.style import OKABE_ITO, PAGE_WIDTH, styled

COLORS = {
    "neurons": OKABE_ITO[1],
    "first_spike": OKABE_ITO[1],
    "linear": OKABE_ITO[4],
    "conv2d": OKABE_ITO[4],
}
"""Box colours by block type (others: grey)."""


def _label(name: str, graph: GraphSpec) -> str:
    if name == INPUT:
        return f"input\n{graph.input_shape}"
    block = graph.blocks[name]
    kind = block.type
    if kind == "neurons":
        kind = block.params["model"] + ("" if block.params["spiking"] else ", membrane")
    return f"{name}\n{kind}\n{block.out_shape}"


def plot_graph(graph: GraphSpec, *, title: str | None = None) -> Figure:
    """The blocks left to right in execution order (the input first), each box naming the
    block, its type (the neuron model for neurons blocks) and output shape. Edges that run
    forward are drawn above the row, edges back to an earlier block (cycles) below it; an edge
    with a delay is dashed and labelled with its steps. Boxes of one cycle share a shade."""
    order: Sequence[str] = [INPUT, *(name for part in graph.schedule for name in part)]
    x = {name: k for k, name in enumerate(order)}
    with styled():
        fig = Figure(figsize=(min(PAGE_WIDTH * 2, 1.1 * len(order) + 1), 3.2), layout="constrained")
        ax = fig.subplots()
        for part in graph.schedule:
            if graph.cyclic(part):
                lo, hi = min(x[n] for n in part), max(x[n] for n in part)
                ax.axvspan(lo - 0.45, hi + 0.45, color=OKABE_ITO[2], alpha=0.12, lw=0)
        for name in order:
            kind = "input" if name == INPUT else graph.blocks[name].type
            ax.text(
                x[name],
                0,
                _label(name, graph),
                ha="center",
                va="center",
                fontsize=6,
                bbox={"boxstyle": "round", "fc": COLORS.get(kind, "#dddddd"), "ec": "none"},
            )
        for name, block in graph.blocks.items():
            for edge in block.inputs:
                start, end = x[edge.source], x[name]
                forward = end > start
                adjacent = forward and end - start == 1
                rad = 0.0 if adjacent else -0.35
                ax.annotate(
                    "",
                    xy=(end - 0.3 if forward else end + 0.3, 0),
                    xytext=(start + 0.3 if forward else start - 0.3, 0),
                    arrowprops={
                        "arrowstyle": "-|>",
                        "lw": 0.8,
                        "ls": "--" if edge.delay else "-",
                        "connectionstyle": f"arc3,rad={rad}",
                        "color": "black" if forward else OKABE_ITO[3],
                    },
                )
                if edge.delay:
                    bend = 0.0 if adjacent else 0.35 * abs(end - start) / 2
                    ax.text(
                        (start + end) / 2,
                        (bend if forward else -bend - 0.15) + 0.06,
                        f"{edge.delay} step{'s' if edge.delay > 1 else ''}",
                        ha="center",
                        fontsize=5,
                    )
        ax.set_xlim(-0.6, len(order) - 0.4)
        ax.set_ylim(-1.6, 1.6)
        ax.axis("off")
        if title:
            fig.suptitle(title, fontsize="medium")
    return fig


def jobs(run: Run) -> list[FigureJob]:
    """Graphs of blocks: ``graph``, drawn from the run's config alone."""
    if not run.value("model.blocks"):
        return []
    return [FigureJob("graph", lambda: plot_graph(run.graph, title=run.heading))]
