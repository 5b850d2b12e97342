"""Maximum-likelihood self-guidance: nudge the noise toward samples the model finds likely (book chapter 6).

The one-step likelihood of the sample that noise x0 produces is J(x0) = log p_0(x0) + D(x0, 0, 1). One Adam step
on x0 that increases J costs one forward and one backward pass; from a fresh Adam state it is a sign-gradient
step of size ``lr``. The learning rate trades quality (likelier samples) against diversity.
"""

from __future__ import annotations

import torch

from f2d2mini import base, checks

__all__ = ["one_step_log_prob", "self_guide"]


def one_step_log_prob(model, x0: torch.Tensor) -> torch.Tensor:
    """J(x0) = log p_0(x0) + D(x0, 0, 1) ``[B]``: the model's log-density of its one-step sample from x0 (its own
    base sigma0)."""
    return base.log_prob(x0, base.resolve_sigma0(model, name="flow map")) + model(x0, 0.0, 1.0).D


def self_guide(model, x0: torch.Tensor, lr: float, steps: int = 1) -> torch.Tensor:
    """Returns new noise after ``steps`` Adam steps of size ``lr`` that raise J(x0) for every sample.

    Args:
        model: a joint flow map ``model(x, t, s) -> FlowMapOutput(u, D)``.
        x0: noise ``[B, *shape]``.
        lr: Adam's learning rate (about the distance each coordinate moves per step).
        steps: Adam steps (each one forward and one backward pass).
    """
    checks.batch(x0, "x0")
    checks.positive_int(steps, "steps")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    x = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(one_step_log_prob(model, x).sum(), x)
        x.grad = -grad  # Adam minimises: descend on -J
        opt.step()
    return x.detach()
