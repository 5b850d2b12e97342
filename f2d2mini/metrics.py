"""Honest 2-D sample metrics (book chapters 5 and 6): distances to fresh data and the exact density of samples."""

from __future__ import annotations

from typing import NamedTuple

import torch

from f2d2mini import checks, toy

__all__ = ["sliced_wasserstein", "support_fraction", "LogDensityGap", "log_density_gap"]

PROJECTIONS = 256  # random directions of the sliced Wasserstein distance


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = PROJECTIONS,
                       seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between equal-size samples ``[n, d]``: the root mean over random unit
    directions of the squared 1-D Wasserstein-2 distance, computed exactly by sorting the projections."""
    checks.batch(a, "a", ndim=2)
    checks.batch(b, "b", dim=a.shape[1], ndim=2)
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same number of points, got {len(a)} and {len(b)}")
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(a.shape[1], projections, generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa, pb = (a.double().cpu() @ dirs).sort(0).values, (b.double().cpu() @ dirs).sort(0).values
    return (pa - pb).pow(2).mean().sqrt().item()


def support_fraction(density: toy.Density, x: torch.Tensor) -> float:
    """Fraction of points where the exact density is positive (e.g. inside the checkerboard's cells)."""
    return torch.isfinite(density.log_prob(x)).double().mean().item()


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
