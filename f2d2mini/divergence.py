"""Divergence of a vector field: exact (trace of the Jacobian) and Hutchinson's estimator (book chapter 2).

``f(x, *args)`` maps a batch ``[B, *shape]`` to a batch of the same shape, each sample independently, as a
velocity ``v(x, t)`` does (pass ``t`` as an extra argument). Both functions return the field's value too, so an
ODE step pays for it once. They use ``torch.func`` transforms, which ignore an outer ``torch.no_grad()``: call
them inside one. They check shapes, not values (a check of values reads the tensor back to the host, which would
stall every training step on a GPU): a nan in ``x`` gives a nan divergence, and the public entry points that take
data (:func:`f2d2mini.ode.likelihood`, the flow maps' ``log_prob``) check values once, up front.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.func import vjp

from f2d2mini import checks

__all__ = ["DivergenceOutput", "exact", "hutchinson", "probes", "NOISES", "MAX_PROBES"]

NOISES = ("rademacher", "gaussian")
MAX_PROBES = 1_000_000  # Hutchinson probes per point: checking unbiasedness takes 2 * 10^4; 10^9 is a typo


class DivergenceOutput(NamedTuple):
    """``value``: f(x) ``[B, *shape]``; ``divergence``: div f(x) ``[B]`` (exact or estimated)."""

    value: torch.Tensor
    divergence: torch.Tensor


def exact(f: Callable[..., torch.Tensor], x: torch.Tensor, *args: torch.Tensor) -> DivergenceOutput:
    """div_x f(x, *args) = tr J(x) = sum_i (e_i^T J)_i, one reverse-mode pass per coordinate e_i.

    Costs about d backward passes for d = prod(shape): the right tool in 2-D, too slow for images (use
    :func:`hutchinson`). Works inside other ``torch.func`` transforms (e.g. a JVP through an ODE flow map).

    Args:
        f: the field ``f(x, *args)``, ``[B, *shape] -> [B, *shape]``, samples independent.
        x: points ``[B, *shape]``.
        args: further inputs passed to ``f`` (e.g. times ``[B]``), not differentiated.
    """
    checks.batch(x, finite=False)
    value, pullback = vjp(lambda z: f(z, *args), x)
    flat = torch.zeros(math.prod(x.shape[1:]), dtype=x.dtype, device=x.device)  # not x[0]: batches may be empty
    total = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    for i in range(len(flat)):
        basis = flat.index_fill(0, torch.tensor([i], device=x.device), 1.0).reshape(x.shape[1:]).expand_as(x)
        (row,) = pullback(basis)  # e_i^T J for every sample
        total = total + row.flatten(1)[:, i]
    return DivergenceOutput(value, total)


def probes(x: torch.Tensor, n: int = 1, noise: str = "rademacher",
           generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` probe vectors ``[n, B, *shape]`` with E[eps eps^T] = I: Rademacher (+-1) or standard Gaussian."""
    checks.integer(n, "probes", 1, MAX_PROBES, why=" (f2d2mini.divergence.MAX_PROBES)")
    checks.choice(noise, NOISES, "noise")
    shape = (n, *x.shape)
    if noise == "gaussian":
        return torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.randint(0, 2, shape, generator=generator, device=x.device).to(x.dtype) * 2 - 1


def hutchinson(f: Callable[..., torch.Tensor], x: torch.Tensor, *args: torch.Tensor, eps: torch.Tensor | None = None,
               n: int = 1, noise: str = "rademacher", generator: torch.Generator | None = None) -> DivergenceOutput:
    """Hutchinson's unbiased estimate div f(x) ~ (1/n) sum_j eps_j^T J_f(x) eps_j, one reverse-mode pass per probe.

    Args:
        f, x, args: the field, the points and its further inputs, as in :func:`exact`.
        eps: fixed probes ``[n, B, *shape]`` (e.g. held constant along an ODE solve); drawn when ``None``.
        n: number of probes when drawing them.
        noise: ``"rademacher"`` (lower variance) or ``"gaussian"``.
        generator: randomness for drawing the probes.
    """
    checks.batch(x, finite=False)
    if eps is None:
        eps = probes(x, n, noise, generator)
    elif eps.shape[1:] != x.shape:
        raise ValueError(f"eps must have shape [probes, {', '.join(map(str, x.shape))}], got {tuple(eps.shape)}")
    value, pullback = vjp(lambda z: f(z, *args), x)
    total = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    for e in eps:
        (row,) = pullback(e)  # e^T J
        total = total + (row * e).flatten(1).sum(1)
    return DivergenceOutput(value, total / len(eps))
