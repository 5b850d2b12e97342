"""Honest 2-D metrics (book chapters 5 and 6): distances to fresh data, the exact density of samples, and a
few-step density checked off the data, on a grid, against a reference log-density.

Each metric is a mean, so it needs at least one point: an empty batch is a ``ValueError`` naming the argument, as
is a result that is not finite (points too far out for their dtype). Points of any floating dtype are accepted:
a density is evaluated in the points' dtype raised to at least float32 (the rule of :mod:`f2d2mini.checks`), the
sliced Wasserstein distance and the grid score in float64; every metric returns Python floats.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from f2d2mini import base, checks, toy

__all__ = ["sliced_wasserstein", "support_fraction", "LogDensityGap", "log_density_gap", "GridScore", "grid_score",
           "MASS_LOG_PROB", "PROJECTIONS", "MAX_PROJECTIONS"]

PROJECTIONS = 256  # random directions of the sliced Wasserstein distance
MAX_PROJECTIONS = 100_000  # more directions than this is a typo (the estimate's noise falls as 1/sqrt of them)
MASS_LOG_PROB = -10.0  # a grid point carries mass where a log-density is at least this (e^-10 ~ 4.5e-5)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = PROJECTIONS,
                       seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between equal-size samples ``[n, d]``: the root mean over random unit
    directions of the squared 1-D Wasserstein-2 distance, computed exactly by sorting the projections."""
    a = checks.points(a, name="a", ndim=2, min_rows=1, norm=False)  # computed in float64
    b = checks.points(b, name="b", dim=a.shape[1], ndim=2, min_rows=1, norm=False)
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same number of points, got {len(a)} and {len(b)}")
    checks.integer(projections, "projections", 1, MAX_PROJECTIONS, why=" (f2d2mini.metrics.MAX_PROJECTIONS)")
    gen = base.make_generator(seed)
    dirs = torch.randn(a.shape[1], projections, generator=gen, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa, pb = (a.double().cpu() @ dirs).sort(0).values, (b.double().cpu() @ dirs).sort(0).values
    return _finite((pa - pb).pow(2).mean().sqrt().item(), "the sliced Wasserstein distance", "a and b")


def _finite(value: float, what: str, name: str) -> float:
    """``value``, or a ValueError naming the argument whose points made it overflow."""
    if not math.isfinite(value):
        raise ValueError(f"{what} is {value}: the points of {name} are too far out for float64")
    return value


def _density_points(density, x, min_rows: int) -> torch.Tensor:
    """``x`` checked against a density: ``[n, density.dim]`` with n >= ``min_rows``, in the dtype rule of the
    module docstring."""
    if not callable(getattr(density, "log_prob", None)):
        raise TypeError(f"density must have a log_prob (e.g. f2d2mini.toy.density(...)), got {type(density).__name__}")
    return checks.points(x, dim=getattr(density, "dim", None), ndim=2, min_rows=min_rows, norm=False, owner="density")


def support_fraction(density: toy.Density, x: torch.Tensor) -> float:
    """Fraction of points where the exact density is positive (e.g. inside the checkerboard's cells)."""
    x = _density_points(density, x, 1)
    return torch.isfinite(density.log_prob(x)).double().mean().item()


class LogDensityGap(NamedTuple):
    """``gap``: mean exact log-density of the points minus that of exact draws; ``std_error``: its standard error."""

    gap: float
    std_error: float


def log_density_gap(density, x: torch.Tensor, *, draws: int | None = None, seed: int = 0) -> LogDensityGap:
    """Checks points ``x`` ``[n, d]`` against a density with an exact ``log_prob`` (book chapters 1 and 3).

    gap = mean log p(x) - mean log p(y) with y ~ p (``draws`` of them, default n); zero in expectation when x ~ p,
    so |gap| within a few ``std_error`` (both samples' Monte Carlo noise) is what a correct sampler shows.

    Raises:
        ValueError: points where log p is not finite (outside the density's support, e.g. between the
            checkerboard's cells, or too far out for the dtype): the gap would be -inf and its error nan; count
            them with :func:`support_fraction`. Also fewer than 2 points or ``draws`` (a standard error needs 2).
    """
    x = _density_points(density, x, 2)  # a standard error needs two points
    if draws is not None:
        checks.integer(draws, "draws", 2)
    y = density.sample(draws or len(x), seed=seed).to(x)
    lp_x, lp_y = density.log_prob(x).double(), density.log_prob(y).double()
    if not torch.isfinite(lp_x).all():
        raise ValueError(f"x has {int((~torch.isfinite(lp_x)).sum())} of {len(x)} points where log p is not finite "
                         f"(outside the density's support, or too far out for {x.dtype}); the mean log-density gap "
                         f"needs points with finite log p: count them with support_fraction(density, x)")
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
    """Scores ``log_prob`` ``[n]`` against ``reference`` ``[n]``, both on the same grid of cells of ``cell_area``.

    Both may be -inf (zero density) but not nan or +inf; the reference must carry mass (log p_ref >=
    ``MASS_LOG_PROB``) somewhere. A peak too high for float64 (log p above ~709) is a score, not an error: the
    integral is then inf."""
    log_prob, reference = _log_densities(log_prob, "log_prob"), _log_densities(reference, "reference")
    if log_prob.shape != reference.shape:
        raise ValueError(f"log_prob and reference must have the same shape [n], got {tuple(log_prob.shape)} and "
                         f"{tuple(reference.shape)}")
    checks.positive_float(cell_area, "cell_area")
    err = log_prob - reference
    mass = reference >= MASS_LOG_PROB
    if not mass.any():
        raise ValueError(f"reference carries no mass on the grid (largest log p_ref {reference.max().item():.4g} < "
                         f"MASS_LOG_PROB = {MASS_LOG_PROB}): nothing to score")
    either = mass | (log_prob >= MASS_LOG_PROB)
    integral = (log_prob.exp().sum() * cell_area).item()  # inf for a spurious peak above float64 (~709 nats)
    return GridScore(integral, err[mass].abs().mean().item(), (err[mass].abs() > 1).double().mean().item(),
                     err[either].max().item())


def _log_densities(value, name: str) -> torch.Tensor:
    """A ``[n]`` floating tensor (n >= 1) with no nan or +inf, as float64 on the CPU."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        got = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
        raise TypeError(f"{name} must be a floating tensor [n] of log-densities, got {got}")
    if value.ndim != 1 or not len(value):
        raise ValueError(f"{name} must have shape [n] with n >= 1, got shape {tuple(value.shape)}")
    if value.is_meta:
        raise ValueError(f"{name} is on the meta device (a shape without values); pass a tensor with values")
    value = value.double().cpu()
    bad = value.isnan() | (value == math.inf)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} nan or +inf entries; log-densities must be finite or -inf")
    return value
