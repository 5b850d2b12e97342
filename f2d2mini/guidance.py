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
        model: a joint flow map ``model(x, t, s) -> FlowMapOutput(u, D)``: points (2-D maps) or images (U-Net maps,
            book chapter 6's "Guiding images"), on the device of ``x0``.
        x0: noise ``[B, *shape]`` of any floating dtype, e.g. ``[B, C, H, W]`` for a U-Net map: every pixel moves.
        lr: Adam's learning rate (about the distance each coordinate moves per step), finite and > 0.
        steps: Adam steps (each one forward and one backward pass), 1..MAX_STEPS.

    Returns:
        The new noise ``[B, *shape]`` in the model's dtype (the rule of :mod:`f2d2mini.checks`); ``[0, *shape]`` for
        an empty batch.

    Raises:
        ValueError, TypeError: naming the argument: x0 of another shape, dtype or device, or not finite; lr or steps
            out of range; new noise that overflows the dtype (x0 too far out, or lr too large).
    """
    x0 = checks.points(x0, model, "x0", owner="flow map")
    checks.steps(steps)
    lr = checks.positive_float(lr, "lr")
    if lr > torch.finfo(x0.dtype).max:  # Adam keeps lr in the dtype of x0
        raise ValueError(f"lr = {lr} is beyond the range of {x0.dtype} (at most {torch.finfo(x0.dtype).max:.3g})")
    x = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(one_step_log_prob(model, x).sum(), x)
        x.grad = -grad  # Adam minimises: descend on -J
        opt.step()
    return checks.finite_result(x.detach(), x0, "x0", "the guided noise", cause=f" or lr = {lr} too large")
