"""Figures without pyplot: the layout every figure of the report shares.

matplotlib's object API (``Figure``, no pyplot) keeps no global figure state and needs no GUI
backend: PNGs are rendered by Agg wherever the insights job runs.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

DPI = 120


COLORS = 20  # distinct version colours; overlaid curves beyond them change line style


def colors(names: list[str]) -> dict[str, tuple[float, ...]]:
    """One stable colour per version, in report order: tab20's dark shades, then its light
    ones, so up to ``COLORS`` versions never share a colour."""
    cmap = matplotlib.colormaps["tab20"]
    return {name: cmap((2 * i) % 20 + (i // 10) % 2) for i, name in enumerate(names)}


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: object) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=kwargs.pop("figsize", (6.5, 4.5)), layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kwargs)


def small_multiples(
    n: int, panel: tuple[float, float] = (3.6, 2.8), ncols: int = 4
) -> tuple[Figure, list[Axes]]:
    """A grid of n panels sharing both axes (one per version: overlaid, a dozen versions are
    unreadable); unused cells hidden."""
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = subplots(
        nrows,
        ncols,
        figsize=(panel[0] * ncols, panel[1] * nrows + 0.8),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    for ax in axes.flat[:n]:
        ax.tick_params(labelbottom=True, labelleft=True)
    return fig, list(axes.flat[:n])


def label_edges(axes: list[Axes], xlabel: str, ylabel: str) -> None:
    """Axis labels on the panels of small_multiples with no panel below or to the left."""
    ncols = axes[0].get_subplotspec().get_gridspec().ncols
    for i, ax in enumerate(axes):
        if i + ncols >= len(axes):
            ax.set_xlabel(xlabel)
        if i % ncols == 0:
            ax.set_ylabel(ylabel)


def placeholder(message: str) -> Figure:
    fig, ax = subplots(figsize=(6, 2.5))
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, wrap=True)
    ax.set_axis_off()
    return fig
