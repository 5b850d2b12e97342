"""The divergence profile of a teacher: its mean -div v over time on the data path, and that profile's exact
average over any jump (t, s), the share of a map's D that depends on the times alone (book chapter 7).

Near the data end an image teacher's divergence grows by orders of magnitude within a sliver of time: -div v is
about d / (1 - t) until the noise (1 - t) sigma0 comes down to the width of a grey level, and there it peaks. A map's
time features, smooth on the scale of the whole interval, do not resolve that sliver, and its first backward jump
from t = 1 misses part of the peak. A :class:`DivergenceProfile` holds the mean m(tau) of -div v at knots dense near
t = 1 (piecewise linear between them) and gives the exact average

    P(t, s) = 1 / (s - t) int_t^s m(tau) dtau,        P(t, t) = m(t),

so that an image map can predict D = P(t, s) (1 + g(x, t, s)) and learn only the relative correction g of each
point. P obeys the semigroup rule exactly: P(t, s) is the mean of P(t, r) and P(r, s) at r = (t + s) / 2.
"""

from __future__ import annotations

import torch
from torch import nn

from f2d2mini import checks, divergence, times

__all__ = ["DivergenceProfile", "knots", "estimate", "KNOT_POWER", "SAME_TIME"]

KNOT_POWER = 3  # knots tau_j = 1 - (1 - j / J)^3: spacing 3 / J at t = 0, 1 / J^3 at t = 1
SAME_TIME = 1e-9  # below this |s - t| the average is the profile at the midpoint (no division by s - t)


def knots(intervals: int) -> torch.Tensor:
    """The J + 1 knots tau_0 = 0 < ... < tau_J = 1 (float64) of a profile with J = ``intervals``."""
    checks.positive_int(intervals, "intervals")
    return 1 - (1 - torch.linspace(0.0, 1.0, intervals + 1, dtype=torch.float64)) ** KNOT_POWER


class DivergenceProfile(nn.Module):
    """m(tau) at :func:`knots` (a float64 buffer ``values``, saved with the map), piecewise linear between them;
    :meth:`average` is P(t, s). Zero until :func:`estimate` fills it."""

    def __init__(self, intervals: int):
        super().__init__()
        self.register_buffer("knots", knots(intervals), persistent=False)
        self.register_buffer("values", torch.zeros(intervals + 1, dtype=torch.float64))

    def _segment(self, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The segment j of each time (tau_j <= tau <= tau_{j+1}) and the fraction of it below tau."""
        k = self.knots.to(tau.device)
        j = (torch.searchsorted(k, tau.detach().clamp(0, 1)) - 1).clamp(0, len(k) - 2)
        return j, (tau - k[j]) / (k[j + 1] - k[j])

    def rate(self, tau: torch.Tensor) -> torch.Tensor:
        """m(tau) ``[B]`` (float64) at times ``tau`` ``[B]`` in [0, 1]."""
        m, (j, f) = self.values.double(), self._segment(tau.double())
        return m[j] + f * (m[j + 1] - m[j])

    def cumulative(self, tau: torch.Tensor) -> torch.Tensor:
        """M(tau) = int_0^tau m ``[B]`` (float64): whole segments by the trapezoid rule, exact for a linear m."""
        m, k, (j, f) = self.values.double(), self.knots.to(tau.device), self._segment(tau.double())
        whole = torch.cat([m.new_zeros(1), torch.cumsum((m[1:] + m[:-1]) / 2 * (k[1:] - k[:-1]), 0)])
        return whole[j] + (k[j + 1] - k[j]) * f * (m[j] + f * (m[j + 1] - m[j]) / 2)

    def average(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """P(t, s) ``[B]`` in the dtype of ``t``, for start and end times ``[B]`` in [0, 1] (either order)."""
        t64, s64 = t.double(), s.double()
        gap = s64 - t64
        same = gap.abs() < SAME_TIME
        spread = (self.cumulative(s64) - self.cumulative(t64)) / torch.where(same, torch.ones_like(gap), gap)
        return torch.where(same, self.rate((t64 + s64) / 2), spread).to(t.dtype)


def estimate(teacher, batch, intervals: int, generator: torch.Generator, *,
             divergence_kind: str = "hutchinson") -> torch.Tensor:
    """m at the :func:`knots` (float64 ``[J + 1]``): the mean of the teacher's -div v over the points of the data path
    x_t = (1 - t) x0 + t x1 of ``batch`` (a :class:`~f2d2mini.base.Batch`) at each knot (Hutchinson probes, one per
    point, from ``generator``)."""
    x0, x1 = batch
    values = []
    for tau in knots(intervals).tolist():
        t = torch.full((len(x1),), tau, dtype=x1.dtype, device=x1.device)
        xt = (1 - times.per_point(t, x1)) * x0 + times.per_point(t, x1) * x1
        if divergence_kind == "exact":
            out = divergence.exact(teacher, xt, t)
        else:
            out = divergence.hutchinson(teacher, xt, t, generator=generator)
        values.append(-out.divergence.double().mean())
    return torch.stack(values).cpu()
