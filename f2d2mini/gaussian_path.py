"""The linear path between two isotropic Gaussians, in any shape: an exact velocity for images and vectors alike.

From the base N(0, I) at t = 0 to N(0, c^2 I) at t = 1, x_t = (1 - t) x0 + t x1 is N(0, s_t^2 I) with
s_t^2 = (1 - t)^2 + c^2 t^2, and the flow-matching velocity is linear in x:

    v(x, t) = E[x1 - x0 | x_t = x] = Cov(x1 - x0, x_t) / s_t^2 x = (c^2 t - (1 - t)) / s_t^2 x.

Its Jacobian is a multiple of the identity, so Hutchinson's estimate of its divergence is exact for every probe:
the closed form against which bits per dim (book chapter 7) and the image ODE are checked.
"""

from __future__ import annotations

import math

import torch

from f2d2mini import checks
from f2d2mini.times import per_point

__all__ = ["GaussianPathVelocity"]


class GaussianPathVelocity(torch.nn.Module):
    """v(x, t) of the path from N(0, I) to N(0, ``scale``^2 I); call ``v(x, t)`` with x ``[B, *shape]``."""

    def __init__(self, scale: float):
        super().__init__()
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        self.scale = float(scale)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        t = checks.time(t, len(x), x, finite=False)
        c2 = self.scale**2
        return per_point((c2 * t - (1 - t)) / ((1 - t) ** 2 + c2 * t**2), x) * x

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; 0, scale^2 I) ``[B]``: the exact log-density at t = 1."""
        d = x[0].numel()
        return -0.5 * x.flatten(1).pow(2).sum(1) / self.scale**2 - 0.5 * d * math.log(2 * math.pi * self.scale**2)
