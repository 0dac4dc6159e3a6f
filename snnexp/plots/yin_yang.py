"""Yin-Yang classification map: test points coloured by predicted class, over the outline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from snnexp.plots.style import NO_SPIKE_COLOR, class_colors, styled

R_BIG = 0.5
R_SMALL = 0.1


def _arc(cx: float, cy: float, r: float, start: float, stop: float, n: int) -> np.ndarray:
    angles = np.linspace(start, stop, n)
    return np.column_stack([cx + r * np.cos(angles), cy + r * np.sin(angles)])


def outline_curves(n_points: int = 256) -> list[np.ndarray]:
    """The Yin-Yang outline as polylines of shape ``(k, 2)`` in input coordinates (x, y).

    Big circle (radius R_BIG around (R_BIG, R_BIG)); the S-curve between yang (below) and
    yin (above): lower half of the circle of radius R_BIG/2 around (R_BIG/2, R_BIG), then the
    upper half of the one around (3 R_BIG/2, R_BIG); the two dots of radius R_SMALL.
    """
    c, half = R_BIG, R_BIG / 2
    s_curve = np.concatenate(
        [
            _arc(half, c, half, np.pi, 2 * np.pi, n_points // 2),
            _arc(c + half, c, half, np.pi, 0.0, n_points // 2)[1:],
        ]
    )
    return [
        _arc(c, c, R_BIG, 0.0, 2 * np.pi, n_points),
        s_curve,
        _arc(half, c, R_SMALL, 0.0, 2 * np.pi, n_points // 2),
        _arc(c + half, c, R_SMALL, 0.0, 2 * np.pi, n_points // 2),
    ]


def plot_yin_yang_map(
    samples: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    class_names: Sequence[str],
    *,
    title: str | None = None,
) -> Figure:
    """Points (x, y) = ``samples[:, :2]`` coloured by prediction; errors marked by a black x."""
    xy = np.asarray(samples)[:, :2]
    errors = predictions != labels
    size = 14.0 if len(xy) <= 2000 else 5.0
    colors = class_colors(len(class_names))
    with styled():
        fig = Figure(figsize=(5.6, 4.3), layout="constrained")
        ax = fig.subplots()
        groups = [(c, name, colors[c]) for c, name in enumerate(class_names)]
        groups.append((-1, "no spike", NO_SPIKE_COLOR))
        for c, name, color in groups:
            chosen = predictions == c
            if c >= 0 or chosen.any():
                ax.scatter(*xy[chosen].T, s=size, color=color, linewidths=0, label=name)
        ax.scatter(
            *xy[errors].T,
            s=size * 1.6,
            marker="x",
            color="black",
            linewidths=0.9,
            label=f"misclassified ({errors.sum()})",
        )
        for curve in outline_curves():
            ax.plot(*curve.T, color="0.15", linewidth=1.0, zorder=3)
        ax.set_aspect("equal")
        ax.set_xlim(-0.02, 2 * R_BIG + 0.02)
        ax.set_ylim(-0.02, 2 * R_BIG + 0.02)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.grid(False)
        ax.legend(
            title="predicted class",
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            markerscale=1.5,
            borderaxespad=0.0,
        )
        if title:
            ax.set_title(title)
    return fig
