"""The times training draws (book chapters 1 and 4): t on [0, 1] for flow matching, and F2D2's pairs (t, s).

Flow matching and the tangent condition need one time t per point; the off-diagonal flow-map rules need a pair
(t, s), a jump from t to s in either direction. Both can favour the data end t = 1, where the velocity bends most
and the likelihood error sits, and a share of the pairs can be the single steps of the K-step schedules that few-step
sampling and likelihood use (``f2d2mini.flowmap.EVAL_STEPS``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["TimePairs", "skewed", "step_pairs", "per_point"]


class TimePairs(NamedTuple):
    """Start times ``t`` and end times ``s``, both ``[n]``."""

    t: torch.Tensor
    s: torch.Tensor


def skewed(n: int, power: float, gen: torch.Generator) -> torch.Tensor:
    """t = 1 - (1 - U)^power with U ~ U(0, 1): uniform for power 1, denser near the data end t = 1 above."""
    return 1 - (1 - torch.rand(n, generator=gen, device=gen.device)) ** power


def step_pairs(n: int, eval_steps: tuple[int, ...] | torch.Tensor, gen: torch.Generator) -> TimePairs:
    """n pairs (t, s) = (k/K, (k +- 1)/K) of the K-step schedules: K drawn from ``eval_steps``, direction at random.

    Pass ``eval_steps`` as a tensor on the generator's device to save a host-to-device copy per call."""
    eval_steps = torch.as_tensor(eval_steps, device=gen.device)
    k_steps = eval_steps[torch.randint(len(eval_steps), (n,), generator=gen, device=gen.device)]
    k = torch.floor(torch.rand(n, generator=gen, device=gen.device) * k_steps)
    start, end = k / k_steps, (k + 1) / k_steps
    backward = torch.rand(n, generator=gen, device=gen.device) < 0.5
    return TimePairs(torch.where(backward, end, start), torch.where(backward, start, end))


def per_point(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Times ``[B]`` shaped ``[B, 1, ..., 1]`` to multiply points ``x`` ``[B, *shape]`` (one time per point)."""
    return t.view(-1, *([1] * (x.ndim - 1)))
