"""The base distribution p_0 = N(0, sigma0^2 I) at t = 0 (book chapter 0)."""

from __future__ import annotations

import math

import torch

from f2d2mini import checks

__all__ = ["log_prob", "make_generator", "sample"]


def log_prob(x: torch.Tensor, sigma0: float = 1.0) -> torch.Tensor:
    """log N(x; 0, sigma0^2 I), summed over all axes but the first.

    Args:
        x: points ``[B, *shape]``.
        sigma0: standard deviation of the base.

    Returns:
        ``[B]`` log-densities: -|x|^2 / (2 sigma0^2) - d/2 log(2 pi sigma0^2).
    """
    checks.batch(x)
    d = x[0].numel()
    sq = x.flatten(1).pow(2).sum(1)
    return -0.5 * sq / sigma0**2 - 0.5 * d * math.log(2 * math.pi * sigma0**2)


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed`` (a random seed when ``None``)."""
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def sample(n: int, shape: tuple[int, ...], sigma0: float = 1.0, *, seed: int | None = None,
           generator: torch.Generator | None = None, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """``n`` draws from N(0, sigma0^2 I) of shape ``[n, *shape]``; randomness from ``seed`` or ``generator``."""
    checks.positive_int(n, "n")
    g = generator if generator is not None else make_generator(seed, device)
    return sigma0 * torch.randn((n, *shape), generator=g, device=device, dtype=dtype)
