"""Honest 2-D metrics (book chapters 5 and 6): distances to fresh data, the exact density of samples, and a
few-step density checked off the data, on a grid, against a reference log-density."""

from __future__ import annotations

from typing import NamedTuple

import torch

from f2d2mini import checks, toy

__all__ = ["sliced_wasserstein", "support_fraction", "LogDensityGap", "log_density_gap", "GridScore", "grid_score",
           "MASS_LOG_PROB"]

PROJECTIONS = 256  # random directions of the sliced Wasserstein distance
MASS_LOG_PROB = -10.0  # a grid point carries mass where a log-density is at least this (e^-10 ~ 4.5e-5)


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


class GridScore(NamedTuple):
    """A log-density on a grid against a reference (book chapter 5).

    ``integral``: sum of p times the cell area, about 1 for a density whose mass lies on the grid; ``mae``: mean
    |log p - log p_ref| over the points where the reference carries mass (log p_ref >= ``MASS_LOG_PROB``);
    ``off_by_1``: the share of those points off by more than 1 nat; ``overshoot``: the largest log p - log p_ref
    where either carries mass (a spurious peak is a large positive overshoot).
    """

    integral: float
    mae: float
    off_by_1: float
    overshoot: float


def grid_score(log_prob: torch.Tensor, reference: torch.Tensor, cell_area: float) -> GridScore:
    """Scores ``log_prob`` ``[n]`` against ``reference`` ``[n]``, both on the same grid of cells of ``cell_area``."""
    log_prob, reference = log_prob.double().cpu(), reference.double().cpu()
    err = log_prob - reference
    mass = reference >= MASS_LOG_PROB
    either = mass | (log_prob >= MASS_LOG_PROB)
    return GridScore((log_prob.exp().sum() * cell_area).item(), err[mass].abs().mean().item(),
                     (err[mass].abs() > 1).double().mean().item(), err[either].max().item())
