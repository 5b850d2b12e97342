"""Plots the book draws in several chapters: densities on a grid, samples, and small multiples.

matplotlib is imported inside the functions, so ``import f2d2mini`` stays light. Every function draws on a given
``ax`` and returns it; the caller owns the figure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

__all__ = ["PLOT_LIMIT", "GRID_SIZE", "grid", "density_image", "samples", "small_multiples", "LogDensityGap",
           "log_density_gap"]

PLOT_LIMIT = 4.5  # half-width of the square every 2-D picture shows: the toy densities live in [-4.2, 4.2]^2
GRID_SIZE = 200  # grid points per side for density images


def grid(limit: float = PLOT_LIMIT, size: int = GRID_SIZE) -> torch.Tensor:
    """The ``[size * size, 2]`` points of a square grid over [-limit, limit]^2, row-major with y up the rows."""
    axis = torch.linspace(-limit, limit, size)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)


def density_image(ax, log_prob: Callable[[torch.Tensor], torch.Tensor] | torch.Tensor, *, limit: float = PLOT_LIMIT,
                  size: int = GRID_SIZE, title: str | None = None, vmax: float | None = None, cmap: str = "magma"):
    """Draws p = exp(log_prob) on the grid of :func:`grid`. ``log_prob`` is a function of ``[n, 2]`` points or
    the ``[size * size]`` values already computed on that grid. ``vmax`` fixes the colour scale (e.g. 1/32 for
    the checkerboard) so estimate and truth are comparable."""
    if callable(log_prob):
        with torch.no_grad():
            log_prob = log_prob(grid(limit, size))
    p = log_prob.detach().double().exp().reshape(size, size).cpu().numpy()
    ax.imshow(p, origin="lower", extent=(-limit, limit, -limit, limit), cmap=cmap, vmin=0, vmax=vmax)
    _square(ax, limit, title)
    return ax


def samples(ax, x: torch.Tensor, *, limit: float = PLOT_LIMIT, title: str | None = None, size: float = 1.0,
            color: str = "C0", alpha: float = 0.5):
    """Scatter of 2-D samples ``[n, 2]`` on the standard square."""
    x = x.detach().cpu()
    ax.scatter(x[:, 0], x[:, 1], s=size, color=color, alpha=alpha, linewidths=0)
    _square(ax, limit, title)
    return ax


def small_multiples(n: int, *, width: float = 2.6, height: float | None = None, sharex: bool = True,
                    sharey: bool = True):
    """A one-row figure of ``n`` panels (the static twin of a widget): returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(width * n, height or width), sharex=sharex, sharey=sharey,
                             squeeze=False, layout="constrained")
    return fig, axes[0]


def _square(ax, limit: float, title: str | None) -> None:
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


class LogDensityGap(NamedTuple):
    """``gap``: mean exact log-density of the points minus that of exact draws; ``std_error``: its standard error."""

    gap: float
    std_error: float


def log_density_gap(density, x: torch.Tensor, *, draws: int | None = None, seed: int = 0) -> LogDensityGap:
    """Checks points ``x`` ``[n, d]`` against a density with an exact ``log_prob`` (book chapters 1 and 3).

    gap = mean log p(x) - mean log p(y) with y ~ p (``draws`` of them, default n); zero in expectation when x ~ p,
    so |gap| within a few ``std_error`` (both samples' Monte Carlo noise) is what a correct sampler shows.
    """
    y = density.sample(draws or len(x), seed=seed).to(x)
    lp_x, lp_y = density.log_prob(x).double(), density.log_prob(y).double()
    gap = (lp_x.mean() - lp_y.mean()).item()
    return LogDensityGap(gap, (lp_x.var() / len(lp_x) + lp_y.var() / len(lp_y)).sqrt().item())
