"""The base distribution p_0 = N(0, sigma0^2 I) at t = 0 (book chapter 0), and a training batch: draws of the base
paired with data."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from f2d2mini import checks

__all__ = ["Batch", "draw_points", "log_prob", "log_density", "make_generator", "sample", "sigma0_of", "resolve_sigma0",
           "same_sigma0", "SIGMA0", "SEED_RANGE"]


class Batch(NamedTuple):
    """One training batch: noise ``x0`` from the base and data ``x1``, both ``[B, *shape]`` on the training
    device."""

    x0: torch.Tensor
    x1: torch.Tensor


def draw_points(draw, n: int, generator: torch.Generator) -> Batch:
    """``n`` pairs (x0, x1) from ``draw(generator, step)`` over steps 0, 1, ... (as many batches as it takes)."""
    batches, step = [], 0
    while sum(len(b.x1) for b in batches) < n:
        batches.append(draw(generator, step))
        step += 1
    return Batch(*(torch.cat(part)[:n] for part in zip(*batches)))


SIGMA0 = 1.0  # the convention for a velocity that declares no base (a plain function v(x, t))
SEED_RANGE = (-(2**63), 2**64 - 1)  # the seeds torch.Generator.manual_seed accepts


def log_prob(x: torch.Tensor, sigma0: float = 1.0) -> torch.Tensor:
    """log N(x; 0, sigma0^2 I), summed over all axes but the first.

    Args:
        x: points ``[B, *shape]``.
        sigma0: standard deviation of the base.

    Returns:
        ``[B]`` log-densities: -|x|^2 / (2 sigma0^2) - d/2 log(2 pi sigma0^2).
    """
    return log_density(checks.batch(x), sigma0)


def log_density(x: torch.Tensor, sigma0: float = 1.0) -> torch.Tensor:
    """:func:`log_prob` without the check of ``x``, for points its caller has checked."""
    d = math.prod(x.shape[1:])  # not x[0]: an empty batch has no first point
    sq = x.flatten(1).pow(2).sum(1)
    return -0.5 * sq / sigma0**2 - 0.5 * d * math.log(2 * math.pi * sigma0**2)


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed`` (an integer in :data:`SEED_RANGE`; a random seed when ``None``)."""
    if seed is not None:
        low, high = SEED_RANGE
        seed = checks.integer(seed, "seed", low, high, kind=f"None or an integer in {low}..{high}")
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen


def sample(n: int, shape: tuple[int, ...], sigma0: float = 1.0, *, seed: int | None = None,
           generator: torch.Generator | None = None, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """``n`` draws from N(0, sigma0^2 I) of shape ``[n, *shape]`` (``n = 0``: an empty batch); randomness from
    ``seed`` or ``generator``."""
    checks.integer(n, "n", minimum=0)
    gen = generator if generator is not None else make_generator(seed, device)
    return sigma0 * torch.randn((n, *shape), generator=gen, device=device, dtype=dtype)


def sigma0_of(model) -> float | None:
    """The base's sigma0 that ``model`` declares: its ``config.sigma0`` (every trained teacher and flow map), its own
    ``sigma0`` (a ``GaussianMixture``), or that of the object a bound method belongs to (``gmm.velocity``); ``None``
    for a plain function."""
    for owner in (model, getattr(model, "__self__", None)):
        for holder in (getattr(owner, "config", None), owner):
            value = getattr(holder, "sigma0", None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
    return None


def resolve_sigma0(model, sigma0: float | None = None, name: str = "model") -> float:
    """The sigma0 to use with ``model``: the one it declares (its owner), ``sigma0`` if given and equal to it, else an
    error naming both; :data:`SIGMA0` for a model that declares none (unless ``sigma0`` says otherwise)."""
    declared = sigma0_of(model)
    if sigma0 is not None:
        checks.positive_float(sigma0, "sigma0")
    if sigma0 is not None and declared is not None and float(sigma0) != declared:
        raise ValueError(f"sigma0 {sigma0} was asked for, but the {name} was trained with base sigma0 {declared}; "
                         f"a likelihood with another base is wrong (leave sigma0 unset to use the {name}'s)")
    return declared if declared is not None else (SIGMA0 if sigma0 is None else float(sigma0))


def same_sigma0(teacher, model) -> float:
    """The base sigma0 that a teacher and a flow map share; an error naming both when they differ (a map's
    likelihood is only comparable with its teacher's on the same base)."""
    a, b = resolve_sigma0(teacher, name="teacher"), resolve_sigma0(model, name="flow map")
    if a != b:
        raise ValueError(f"the teacher's base sigma0 is {a} but the flow map's is {b}; distil and compare a map "
                         f"only with the teacher it was distilled from (same sigma0)")
    return a
