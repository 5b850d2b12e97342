"""Velocity models that f2d2mini did not create, in its call ``v(x, t)`` (book chapter 8).

Everything in f2d2mini calls a velocity as ``v(x, t)``: x ``[B, *shape]``, t a ``[B]`` tensor of per-sample times,
with **t = 0 the base N(0, sigma0^2 I) and t = 1 the data**, on the linear path x_t = (1 - t) x0 + t x1 (so that
v = x1 - x0 is the conditional velocity). Models trained elsewhere use other calls:

=================================  ==============================================  =========================
the model                          how it is called                                wrap it with
=================================  ==============================================  =========================
plain PyTorch, ``forward(x, t)``   ``model(x, t)``                                 nothing (or :func:`velocity`)
facebookresearch/flow_matching     ``model(x=x, t=t, **extras)`` (a ModelWrapper)  :func:`flow_matching`
torchcfm's MLPs and tutorials      ``net(torch.cat([x, t[:, None]], 1))``          :func:`concat_time`
py-meanflow, the MeanFlow paper    time runs backwards: t = 0 data, t = 1 noise    :func:`reverse_time`
=================================  ==============================================  =========================

A model trained the other way round (x_tau = (1 - tau) x1 + tau x0, velocity x0 - x1) has the same path with
tau = 1 - t, and its velocity points the other way: v(x, t) = -w(x, 1 - t). Every wrapper is an ``nn.Module`` that
declares the base's ``sigma0`` (so that likelihoods use it) and keeps the wrapped model as a submodule (so that
``.to(device)`` and copies carry it along). :func:`check_velocity` calls a teacher once on a small batch and names
what is wrong before any training step: the signature, the output's shape, NaNs, the time direction.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from f2d2mini import base, losses

__all__ = ["Velocity", "FlowMatchingVelocity", "ConcatTimeVelocity", "ReversedTimeVelocity", "velocity",
           "flow_matching", "concat_time", "reverse_time", "check_velocity", "VelocityCheck", "TeacherError",
           "TeacherWarning", "CHECK_TIMES", "EXPLAINED", "SIGNATURES"]

CHECK_TIMES = (0.25, 0.5, 0.75)  # where check_velocity compares the teacher's flow-matching loss with v = 0's
EXPLAINED = 0.1  # the share of L(0) that the teacher read backwards must explain to be called a reversed convention
# (a trained teacher explains far more; an untrained one can fall below L(0) by chance)
SIGNATURES = ("v(x, t) with t a [B] tensor (f2d2mini, plain PyTorch: pass the model as it is)",
              "model(x=x, t=t) (facebookresearch/flow_matching's ModelWrapper: f2d2mini.adapters.flow_matching(model))",
              "net(torch.cat([x, t[:, None]], 1)) (torchcfm's MLPs: f2d2mini.adapters.concat_time(net))")


class TeacherError(ValueError):
    """A teacher velocity that cannot be distilled as it is; the message says what was tried and how to fix it."""


class TeacherWarning(UserWarning):
    """A teacher that runs but does not look like a flow from the base to this data (untrained, or other scaling)."""


class Velocity(nn.Module):
    """A velocity model in f2d2mini's call ``v(x, t)``, with the base's ``sigma0``: what every wrapper here returns.

    ``model`` (the wrapped module or function) is held as an attribute, so ``.to(device)`` and ``copy.deepcopy``
    carry it along; subclasses translate the call in :meth:`call`. This class itself calls ``model(x, t)``.
    """

    def __init__(self, model: Callable, sigma0: float = base.SIGMA0):
        super().__init__()
        self.model, self.sigma0 = model, float(sigma0)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.call(x, _times(t, x))

    def call(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The wrapped model's velocity at x ``[B, *shape]`` and times t ``[B]``."""
        return self.model(x, t)


def _times(t, x: torch.Tensor) -> torch.Tensor:
    """t as a ``[B]`` tensor on x's device and dtype (f2d2mini's own calls already pass one)."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.expand(len(x)) if t.ndim == 0 else t


def velocity(fn: Callable, sigma0: float = base.SIGMA0) -> Velocity:
    """A plain ``v(x, t)`` (a function or a module with ``forward(x, t)``) that declares its base ``sigma0``."""
    return Velocity(fn, sigma0)


class FlowMatchingVelocity(Velocity):
    """See :func:`flow_matching`."""

    def __init__(self, model: nn.Module, sigma0: float = base.SIGMA0, extras: dict | None = None):
        super().__init__(model, sigma0)
        self.extras = dict(extras or {})

    def call(self, x, t):
        return self.model(x=x, t=t, **self.extras)


def flow_matching(model: nn.Module, sigma0: float = base.SIGMA0, **extras) -> Velocity:
    """A facebookresearch/flow_matching velocity (a ``ModelWrapper``, called ``model(x=x, t=t, **extras)``).

    flow_matching's convention is f2d2mini's (t = 0 source, t = 1 data, the linear ``CondOTScheduler`` path);
    ``extras`` (e.g. a class label) are passed on every call. Its ``ODESolver`` calls the model with a scalar t;
    f2d2mini passes per-sample times ``[B]``, as flow_matching's training loops do.
    """
    return FlowMatchingVelocity(model, sigma0, extras)


class ConcatTimeVelocity(Velocity):
    """See :func:`concat_time`."""

    def call(self, x, t):
        return self.model(torch.cat([x, t[:, None]], dim=1))


def concat_time(net: nn.Module, sigma0: float = base.SIGMA0) -> Velocity:
    """A network on vectors that takes the time as a last input feature, ``net(torch.cat([x, t[:, None]], 1))``
    (torchcfm's ``MLP`` and its tutorials): x ``[B, d]`` -> ``[B, d]``."""
    return ConcatTimeVelocity(net, sigma0)


class ReversedTimeVelocity(Velocity):
    """See :func:`reverse_time`."""

    def call(self, x, t):
        return -self.model(x, 1 - t)


def reverse_time(w: Callable, sigma0: float | None = None) -> Velocity:
    """A velocity trained with time running backwards (t = 0 data, t = 1 noise: py-meanflow, the MeanFlow paper) in
    f2d2mini's convention: v(x, t) = -w(x, 1 - t), the same path with the direction of travel flipped.

    ``w`` is called ``w(x, t)`` (wrap it first if it needs another call); ``sigma0`` defaults to the one it declares.
    """
    return ReversedTimeVelocity(w, base.resolve_sigma0(w, sigma0, "velocity"))


class VelocityCheck(NamedTuple):
    """What :func:`check_velocity` measured: the teacher's flow-matching loss on the check batch at
    :data:`CHECK_TIMES`, that of v = 0 (``zero_loss``) and that of :func:`reverse_time` ``(teacher)``
    (``reversed_loss``: the teacher read in the other time direction)."""

    loss: float
    zero_loss: float
    reversed_loss: float


def check_velocity(teacher, batch: base.Batch) -> VelocityCheck:
    """Calls ``teacher(x, t)`` on a small batch of the path and names what is wrong, before any training.

    Checks, in order: the call (when ``teacher(x, t)`` fails, the other known signatures are tried and the error
    names the adapter that works), the output's shape and dtype, that the output is finite, and the direction
    of time (an error when the teacher read backwards explains a share :data:`EXPLAINED` of L(0), a
    :class:`TeacherWarning` when it fits neither direction). For
    the marginal velocity v = E[x1 - x0 | x_t] the flow-matching loss is
    L(v) = E|x1 - x0|^2 - E|v|^2 <= L(0), and the same field read in the other time direction (-v(x, 1 - t)) costs
    L(0) + 3 E|v|^2 at t = 1/2: a teacher whose loss on this data is above L(0) does not carry the base to this
    data (another time convention, other scaling of the data, or untrained).

    Args:
        teacher: the velocity to check.
        batch: noise ``x0`` and data ``x1``, ``[B, *shape]`` each (a few hundred points are plenty).

    Raises:
        TeacherError: with what was tried and how to fix it.

    Warns:
        TeacherWarning: the teacher's loss on this data is above that of v = 0 in both time directions.
    """
    x0, x1 = batch
    n = len(x1)
    times = torch.tensor(CHECK_TIMES, dtype=x1.dtype, device=x1.device).repeat_interleave(n)
    x0, x1 = x0.repeat(len(CHECK_TIMES), *([1] * (x1.ndim - 1))), x1.repeat(len(CHECK_TIMES), *([1] * (x1.ndim - 1)))
    xt = losses.interpolate(x0, x1, times)
    with torch.no_grad():
        v = _call(teacher, xt, times)
        flipped = -_call(teacher, xt, 1 - times)  # what reverse_time(teacher) would give
    target = x1 - x0
    loss, zero, reversed_loss = (_squares(w - target) for w in (v, torch.zeros_like(v), flipped))
    measured = f"its flow-matching loss on the data at t = {', '.join(map(str, CHECK_TIMES))} is {loss:.4g}, above the "
    if loss > zero and reversed_loss < (1 - EXPLAINED) * zero:
        raise TeacherError(f"the teacher fits the other time direction (t = 0 data, t = 1 noise, as py-meanflow and "
                           f"the MeanFlow paper): {measured}{zero:.4g} of v = 0 and the {reversed_loss:.4g} of "
                           f"-v(x, 1 - t); wrap it with f2d2mini.adapters.reverse_time(teacher)")
    if loss > zero:
        warnings.warn(f"the teacher does not carry the base N(0, sigma0^2 I) to this data: {measured}{zero:.4g} of "
                      f"v = 0; check that the data is scaled as the teacher was trained on it, and that the teacher "
                      f"is trained", TeacherWarning, stacklevel=4)
    return VelocityCheck(loss, zero, reversed_loss)


def _squares(err: torch.Tensor) -> float:
    """mean over the batch of |err|^2 summed over the other axes."""
    return err.flatten(1).pow(2).sum(1).mean().item()


def _call(teacher, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``teacher(x, t)``, checked; when the call fails, the error says which known signature the teacher accepts."""
    try:
        v = teacher(x, t)
    except Exception as err:  # any failure of user code: the message below names what was tried
        raise TeacherError(f"calling teacher(x, t) with x of shape {tuple(x.shape)} and t of shape {tuple(t.shape)} "
                           f"failed ({type(err).__name__}: {err}). {_which_signature(teacher, x, t)}") from err
    if not isinstance(v, torch.Tensor) or v.shape != x.shape:
        got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise TeacherError(f"teacher(x, t) must return a velocity of x's shape {tuple(x.shape)}, got {got}. "
                           f"{_which_signature(teacher, x, t)}")
    if not v.is_floating_point():
        raise TeacherError(f"teacher(x, t) returned dtype {v.dtype}; a velocity is a floating-point tensor")
    bad = int((~torch.isfinite(v)).sum())
    if bad:
        raise TeacherError(f"teacher(x, t) returned {bad} non-finite values (nan or inf) on {len(x)} points of the "
                           f"path between the base and the data")
    return v


def _which_signature(teacher, x: torch.Tensor, t: torch.Tensor) -> str:
    """Names the known signature under which ``teacher`` returns x's shape, or lists them all."""
    tries = {"f2d2mini.adapters.flow_matching(teacher)": lambda: teacher(x=x, t=t)}
    if x.ndim == 2:
        tries["f2d2mini.adapters.concat_time(teacher)"] = lambda: teacher(torch.cat([x, t[:, None]], dim=1))
    for fix, call in tries.items():
        try:
            with torch.no_grad():
                out = call()
        except Exception:  # noqa: S112 - a signature that does not fit; the next is tried
            continue
        if isinstance(out, torch.Tensor) and out.shape == x.shape:
            return f"It does accept another signature: wrap it as {fix}."
    return "f2d2mini calls a velocity in one of these ways: " + "; ".join(SIGNATURES) + "."
