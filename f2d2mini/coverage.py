"""Where a flow map's likelihood can be trusted: the region its distillation covered (book chapters 4 and 5).

Distilled on the data path x_t = (1 - t) x0 + t x1 alone, a map has seen at t = 1 only points on the data, so the
first backward jump from any other point is an extrapolation, and a K-step likelihood there can be off by
thousands of nats. Coverage trains a share of each batch where a likelihood query goes instead: a square
[-B, B]^d at the data end, carried back to t = 0 by the teacher's own flow. A uniform draw in the square is moved
backward by the teacher's ODE (fixed-step RK4) once, before training, and the states along the way are kept
(:class:`FlowBank`); a training point at time t interpolates a stored trajectory between its two nearest states.
Those are the points a K-step likelihood of a point in the square visits, up to the map's error.

The square is saved with the map (``model.region``, a :class:`Region`); :func:`warn_outside` warns once when a
likelihood is asked for outside it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch

from f2d2mini import checkpoint, ode

__all__ = ["Region", "FlowBank", "flow_bank", "draw", "warn_outside", "OutsideRegionWarning"]


@dataclass(frozen=True)
class Region:
    """The square [-half_width, half_width]^d at t = 1 that a map's distillation covered (coverage)."""

    half_width: float

    def contains(self, x: torch.Tensor) -> torch.Tensor:
        """``[B]`` booleans: the points of ``x`` ``[B, *shape]`` inside the square."""
        return (x.flatten(1).abs() <= self.half_width).all(1)

    def __str__(self) -> str:
        return f"[-{self.half_width:g}, {self.half_width:g}]^d"


checkpoint.register_attribute("region", Region)  # saved with the map's weights, restored by f2d2mini.load


class OutsideRegionWarning(RuntimeWarning):
    """A likelihood was asked for at points outside the region the map was trained on."""


class FlowBank(NamedTuple):
    """``states`` ``[steps + 1, points, *shape]``: uniform points of the square at t = 1 (``states[0]``) and the
    teacher's backward flow of them, ``states[k]`` at t = 1 - k / steps."""

    states: torch.Tensor


def flow_bank(teacher, half_width: float, shape: tuple[int, ...], points: int, steps: int,
              device: torch.device | str = "cpu", seed: int = 0) -> FlowBank:
    """Draws ``points`` uniform points of [-half_width, half_width]^shape and carries them from t = 1 to t = 0
    along the teacher's ODE with ``steps`` RK4 steps, keeping every state."""
    gen = torch.Generator(device=device).manual_seed(seed)
    x = (2 * torch.rand((points, *shape), generator=gen, device=device) - 1) * half_width
    velocity = lambda s, y: (teacher(y[0], torch.full((len(y[0]),), s, dtype=x.dtype, device=x.device)),)  # noqa
    states, h = [x], 1.0 / steps
    with torch.no_grad():
        for k in range(steps):
            x = ode.integrate(velocity, (x,), 1.0 - k * h, 1.0 - (k + 1) * h, solver="rk4", steps=1).state[0]
            states.append(x)
    return FlowBank(torch.stack(states))


def draw(bank: FlowBank, t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Points at times ``t`` ``[n]`` on random trajectories of the bank, interpolated linearly between the two
    stored states around each t: ``[n, *shape]``."""
    steps, points = bank.states.shape[0] - 1, bank.states.shape[1]
    j = torch.randint(points, (len(t),), generator=gen, device=gen.device)
    u = (1 - t) * steps  # position along the stored states
    k = u.floor().clamp(max=steps - 1).long()
    frac = (u - k).view(-1, *([1] * (bank.states.ndim - 2)))
    return (1 - frac) * bank.states[k, j] + frac * bank.states[k + 1, j]


def warn_outside(model, x: torch.Tensor) -> None:
    """Warns once per model when ``x`` has points outside ``model.region``, or when the map covered no region (it was
    distilled on the data path alone: its likelihood is trusted on the data, not off it)."""
    if getattr(model, "_warned_outside", False):
        return
    region = getattr(model, "region", None)
    if region is None:
        message = ("this flow map was distilled on the data path alone (no coverage, so no model.region): its "
                   "log-likelihood is trusted on the data, not off it (see book chapter 5)")
    else:
        outside = int((~region.contains(x)).sum())
        if not outside:
            return
        message = (f"{outside} of {len(x)} points lie outside the region this flow map was trained on, {region}; "
                   f"its log-likelihood there is an extrapolation (see book chapter 5)")
    warnings.warn(message, OutsideRegionWarning, stacklevel=3)
    model._warned_outside = True
