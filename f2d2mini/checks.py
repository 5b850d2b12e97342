"""Input checks shared by every public function: clear errors that name the bad value and the allowed ones.

**The dtype rule** of every public entry point that takes points (a flow map's ``sample``,
``sample_and_log_prob`` and ``log_prob``, :mod:`f2d2mini.ode`'s ``sample``/``likelihood``/``log_prob``, bits per
dim, self-guidance, the metrics), applied in one place, :func:`points`: points may have any floating dtype
(float16, bfloat16, float32, float64; integer and bool tensors are a ``TypeError``). They are cast to the
*compute dtype*, the dtype of the model's parameters (a float32 model computes numpy's float64 in float32), or,
for a callable without parameters (``gmm.velocity``) and for the metrics, the points' own dtype raised to at
least float32 (float16 and bfloat16 become float32; float64 stays). Results come back in the compute dtype, on
the model's device (points on another device are an error, not a copy). Points beyond the compute dtype's range,
and results that overflow it (|x| ~ 1e30 in float32, whose squared norm is inf), are a ``ValueError`` naming the
argument (:func:`finite_result`): never a silent inf or nan. An empty batch ``[0, *shape]`` gives empty results.
"""

from __future__ import annotations

import itertools
import math
import numbers
import operator
from collections.abc import Iterable

import torch

__all__ = ["batch", "choice", "positive_int", "integer", "steps", "positive_float", "time", "points",
           "event_shape", "compute_dtype", "finite_result", "FLOATING", "MIN_COMPUTE_DTYPE", "MAX_STEPS"]

FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)  # the dtypes points may have
MIN_COMPUTE_DTYPE = torch.float32  # a callable without parameters computes in at least this dtype
MAX_STEPS = 100_000  # the most solver steps, jumps or Adam steps one call runs: 10^5 evaluations of even a 2-D
# teacher take minutes, so more is a typo (10**9 would run for days), refused before it starts


def _dtypes() -> str:
    return ", ".join(str(d).removeprefix("torch.") for d in FLOATING)


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
        hint = " (convert it with torch.from_numpy)" if type(x).__name__ == "ndarray" else ""
        raise TypeError(f"{name} must be a torch.Tensor of shape [batch, ...], got {type(x).__name__}{hint}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor ({_dtypes()}), got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape [batch, ...] with at least 2 axes, got shape {tuple(x.shape)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {tuple(x.shape)}")
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(f"{name} must have shape [batch, {dim}], got shape {tuple(x.shape)}")
    if finite:
        _values(x, name)
    return x


def _values(x: torch.Tensor, name: str) -> None:
    """Raises unless every entry of ``x`` is finite, naming the count and the first bad value."""
    if x.is_meta:
        raise ValueError(f"{name} is on the meta device (a shape without values); pass a tensor with values")
    bad = ~torch.isfinite(x)
    if bad.any():
        first = x.flatten()[bad.flatten()][0].item()
        raise ValueError(f"{name} has {int(bad.sum())} non-finite entries (the first: {first}); all entries "
                         f"must be finite")


def _reference(model) -> torch.Tensor | None:
    """The first floating parameter or buffer of ``model`` (a module, or a bound method of one), else ``None``."""
    for owner in (model, getattr(model, "__self__", None)):
        if isinstance(owner, torch.nn.Module):
            for tensor in itertools.chain(owner.parameters(), owner.buffers()):
                if tensor.is_floating_point():
                    return tensor
    return None


def event_shape(model) -> tuple[int, ...] | None:
    """The shape of one point that ``model`` takes, where it declares one: its ``event_shape`` (the flow maps), its
    config's (a U-Net's ``(channels, size, size)``, an MLP's ``(dim,)``), or for a bound method its owner's (a
    mixture's ``gmm.velocity``: ``(gmm.dim,)``); ``None`` for a plain function."""
    for owner in (model, getattr(model, "__self__", None)):
        shape, config = getattr(owner, "event_shape", None), getattr(owner, "config", None)
        if shape is not None:
            return tuple(shape)
        if all(isinstance(getattr(config, f, None), int) for f in ("channels", "size")):
            return (config.channels, config.size, config.size)
        for holder in (config, None if owner is model else owner):
            dim = getattr(holder, "dim", None)
            if isinstance(dim, int) and not isinstance(dim, bool):
                return (dim,)
    return None


def compute_dtype(model, x: torch.Tensor) -> torch.dtype:
    """The dtype ``model`` computes points ``x`` in: its parameters', or ``x``'s raised to at least float32 for a
    callable without parameters (``model=None``: the metrics)."""
    ref = _reference(model)
    return ref.dtype if ref is not None else torch.promote_types(x.dtype, MIN_COMPUTE_DTYPE)


def points(x, model=None, name: str = "x", *, shape: tuple[int, ...] | None = None, dim: int | None = None,
           ndim: int | None = None, min_rows: int = 0, norm: bool = True, owner: str = "model") -> torch.Tensor:
    """The check of points at a public entry point: :func:`batch` (type, shape, finite values), the model's event
    shape, then the cast to the compute dtype of the module docstring's rule.

    Args:
        x: points ``[B, *shape]``.
        model: the model or velocity they go into (its parameters give the dtype and device), or ``None``.
        name: the argument name used in error messages.
        shape: the required shape of one point; by default the model's, where it declares one
            (:func:`event_shape`).
        dim, ndim: as in :func:`batch`.
        min_rows: the fewest points allowed (1 for a mean over the batch, 2 for its standard error).
        norm: require each point's squared norm to be finite in the compute dtype (|x| below about
            sqrt(max / d), 1.8e19 / sqrt(d) in float32): beyond it the base log-density -|x|^2 / 2 is not
            representable, and neither is any likelihood. Computations in float64 (the metrics) pass ``False``.
        owner: what ``model`` is called in error messages (``"velocity"``).

    Returns:
        ``x`` in the compute dtype (the same tensor when it is already in it).
    """
    if not callable(model) and model is not None:
        raise TypeError(f"{owner} must be a callable (a module or a function), got {type(model).__name__}")
    batch(x, name, dim=dim, ndim=ndim, finite=False)
    shape = event_shape(model) if shape is None else shape
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} must have shape [batch, {', '.join(map(str, shape))}], got shape "
                         f"{tuple(x.shape)} (the {owner}'s points have shape {tuple(shape)})")
    if len(x) < min_rows:
        raise ValueError(f"{name} holds {len(x)} points (shape {tuple(x.shape)}); this needs at least {min_rows}")
    ref = _reference(model)
    if ref is not None and x.device != ref.device:
        raise ValueError(f"{name} is on device {x.device} but the {owner} is on {ref.device}; move one of them "
                         f"(e.g. {name}.to({str(ref.device)!r}))")
    dtype = ref.dtype if ref is not None else compute_dtype(None, x)
    cast = x.to(dtype)
    if norm and not x.is_meta and torch.isfinite(cast.flatten(1).pow(2).sum(1)).all():
        return cast  # one reduction: finite squared norms in the compute dtype imply every check below
    _values(x, name)
    if not torch.isfinite(cast).all():
        raise ValueError(f"{name} has entries up to |{name}| = {x.abs().max().item():.3g}, beyond the range of "
                         f"{dtype} the {owner} computes in (at most {torch.finfo(dtype).max:.3g})")
    if norm and len(cast) and not torch.isfinite(cast.flatten(1).pow(2).sum(1)).all():
        d = math.prod(x.shape[1:])
        raise ValueError(f"{name} has points whose squared norm overflows {dtype} (|{name}| up to "
                         f"{x.abs().max().item():.3g}; at most about {math.sqrt(torch.finfo(dtype).max / d):.3g} "
                         f"in {d} dimensions): their base log-density -|{name}|^2 / 2 is not representable")
    return cast


def finite_result(result: torch.Tensor, x: torch.Tensor, name: str = "x", what: str = "the result",
                  cause: str = "") -> torch.Tensor:
    """Returns ``result`` ``[B, ...]`` computed from finite points ``x`` ``[B, ...]``; raises a ``ValueError``
    naming ``name`` if it overflowed (``cause``: a further possible reason, e.g. a learning rate)."""
    if torch.isfinite(result).all():  # an empty result too
        return result
    rows = ~torch.isfinite(result.reshape(len(result), -1)).all(1)
    far = x[rows].abs().max().item()
    raise ValueError(f"{what} is not finite for {int(rows.sum())} of {len(result)} points of {name} (largest "
                     f"|{name}| among them: {far:.3g}) in {result.dtype} (at most {torch.finfo(result.dtype).max:.3g}"
                     f"): {name} is too far out for it{cause}, or the model's weights are not finite")


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
    return torch.full((n,), float_time(t, name), device=like.device, dtype=like.dtype)


def float_time(t, name: str = "t") -> float:
    """A time given as a number (an int or a float, not a bool), checked finite, as a float."""
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        if not math.isfinite(t):
            raise ValueError(f"{name} must be finite, got {t}")
        return float(t)
    raise TypeError(f"{name} must be a float or a [batch] tensor, got {type(t).__name__}")


def integer(value, name: str, minimum: int = 1, maximum: int | None = None, *, kind: str | None = None,
            why: str = "") -> int:
    """Checks that ``value`` is an integer (a Python, numpy or one-element torch integer, not a bool) in
    ``minimum..maximum``; ``kind`` replaces "an integer >= minimum" in the message, ``why`` explains the maximum."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < minimum:
        raise ValueError(f"{name} must be {kind or f'an integer >= {minimum}'}, got {value!r}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be at most {maximum}{why}, got {value!r}")
    return number


def positive_int(value, name: str) -> int:
    """Checks that ``value`` is an integer >= 1."""
    return integer(value, name)


def steps(value, name: str = "steps") -> int:
    """Checks a number of steps (solver steps, jumps, Adam steps): an integer in 1..:data:`MAX_STEPS`."""
    return integer(value, name, 1, MAX_STEPS, why=" (f2d2mini.checks.MAX_STEPS: more would run for hours; "
                   "a count that large is a typo)")


def positive_float(value, name: str) -> float:
    """Checks that ``value`` is a finite real number > 0 (a learning rate, a tolerance, a scale)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}")
    return float(value)


def choice(value, allowed: Iterable[str], name: str) -> str:
    """Checks that ``value`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")
    return value
