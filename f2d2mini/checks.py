"""Input checks shared by every public function: clear errors that name the bad value and the allowed ones."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["batch", "choice", "positive_int", "time"]


def batch(x, name: str = "x", *, dim: int | None = None, ndim: int | None = None,
          finite: bool = True) -> torch.Tensor:
    """Checks a batch of points ``[B, *shape]``: a floating tensor, at least 2-D, finite.

    Args:
        x: the value to check.
        name: the argument name used in error messages.
        dim: if given, the required size of the last axis (e.g. 2 for the toy densities).
        ndim: if given, the required number of axes.
        finite: check the values too. Network forwards pass ``False``: they run inside ``torch.func``
            transforms, where a data-dependent check cannot run, so the public entry points check values.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [batch, ...], got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape [batch, ...] with at least 2 axes, got shape {tuple(x.shape)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {tuple(x.shape)}")
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(f"{name} must have shape [batch, {dim}], got shape {tuple(x.shape)}")
    if finite and not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        raise ValueError(f"{name} has {bad} non-finite entries (nan or inf); all entries must be finite")
    return x


def time(t, n: int, like: torch.Tensor, name: str = "t", *, finite: bool = True) -> torch.Tensor:
    """Turns a time (a float or a ``[n]`` tensor) into a ``[n]`` tensor on ``like``'s device and dtype.

    ``finite=False`` skips the value check of a tensor (inside ``torch.func`` transforms); floats are always checked.
    """
    if isinstance(t, torch.Tensor):
        if t.ndim == 0:
            t = t.expand(n)
        if t.shape != (n,):
            raise ValueError(f"{name} must be a float or a tensor of shape [{n}], got shape {tuple(t.shape)}")
        t = t.to(device=like.device, dtype=like.dtype)
        if finite and not torch.isfinite(t).all():
            raise ValueError(f"{name} must be finite, got {t}")
        return t
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        if not math.isfinite(t):
            raise ValueError(f"{name} must be finite, got {t}")
        return torch.full((n,), float(t), device=like.device, dtype=like.dtype)
    raise TypeError(f"{name} must be a float or a [batch] tensor, got {type(t).__name__}")


def positive_int(value, name: str) -> int:
    """Checks that ``value`` is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def choice(value, allowed: Iterable[str], name: str) -> str:
    """Checks that ``value`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")
    return value
