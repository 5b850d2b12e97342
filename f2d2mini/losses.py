"""Training losses as pure functions returning ``LossOutput(loss, metrics)`` (book chapters 1 and 4).

Metric keys are namespaced (``"fm/..."``) and hold detached scalar tensors: the training loop reads them back to
the host once per ``log_every`` steps, so that a GPU step never waits for the host.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch

from f2d2mini import times
from f2d2mini.base import Batch
from f2d2mini.flowmap import FlowMapOutput

__all__ = ["LossOutput", "Batch", "Targets", "LagrangianPrediction", "interpolate", "flow_matching", "teacher_loss",
           "teacher_targets", "regress", "tangent", "teacher_jumps", "shortcut", "shortcut_target", "meanflow",
           "eulerian_prediction", "lsd", "lsd_prediction", "RULES", "RULE_LOSSES", "ADAPTIVE_EPS"]


class LossOutput(NamedTuple):
    """``loss``: the scalar to minimise; ``metrics``: named detached scalar tensors to log."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The linear path x_t = (1 - t) x0 + t x1, with t ``[B]`` broadcast over the other axes."""
    tb = times.per_point(t, x0)
    return (1 - tb) * x0 + tb * x1


def teacher_loss(draw, time_power: float = 1.0):
    """The flow-matching loss as a :func:`f2d2mini.loop.fit` loss ``(model, step, generator) -> LossOutput``:
    ``draw(generator, step) -> Batch(x0, x1)`` gives each batch, t = 1 - (1 - U)^time_power."""

    def loss_fn(model, step, gen):
        x0, x1 = draw(gen, step)
        return flow_matching(model, x0, x1, times.skewed(len(x1), time_power, gen))

    return loss_fn


def flow_matching(velocity, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> LossOutput:
    """Conditional flow matching: E || v(x_t, t) - (x1 - x0) ||^2, averaged over the batch and summed over axes.

    Its minimiser is the marginal velocity v(x, t) = E[x1 - x0 | x_t = x].

    Args:
        velocity: ``v(x, t)``.
        x0: noise ``[B, *shape]``; x1: data ``[B, *shape]``; t: times ``[B]`` in [0, 1].
    """
    target = x1 - x0
    err = (velocity(interpolate(x0, x1, t), t) - target).flatten(1).pow(2).sum(1)
    loss = err.mean()
    return LossOutput(loss, {"fm/loss": loss.detach()})


# ---------------------------------------------------------------------------------------------------------------
# F2D2: the joint flow map's losses (book chapters 3 and 4). Every rule regresses (u, D) onto stop-gradient
# targets; D is compared in the network's units D / R so that its loss is on the scale of u's.
# ---------------------------------------------------------------------------------------------------------------

RULES = ("shortcut", "meanflow", "lsd")


class Targets(NamedTuple):
    """What (u, D) should be: ``u`` ``[B, *shape]`` and ``D`` ``[B]``, both detached."""

    u: torch.Tensor
    D: torch.Tensor


def teacher_targets(teacher, x: torch.Tensor, t: torch.Tensor, divergence: str = "exact", probes: int = 1,
                    generator: torch.Generator | None = None) -> Targets:
    """The tangent targets v(x, t) and -div v(x, t) of a teacher velocity (exact or Hutchinson divergence)."""
    from f2d2mini import divergence as div  # the module; `divergence` is the argument

    with torch.no_grad():
        if divergence == "exact":
            out = div.exact(teacher, x, t)
        else:
            out = div.hutchinson(teacher, x, t, n=probes, generator=generator)
    return Targets(out.value.detach().to(x.dtype), -out.divergence.detach().to(x.dtype))  # float32 under autocast


ADAPTIVE_EPS = 1e-3  # c in MeanFlow's adaptive weight 1 / (e + c)^p: keeps the weight finite where e = 0


def regress(out, target: Targets, d_weight: float, div_scale: float, prefix: str,
            adaptive_power: float = 0.0) -> LossOutput:
    """e = |u - target.u|^2 + d_weight ((D - target.D) / R)^2 per point (summed over axes), averaged over the batch.

    ``adaptive_power`` p > 0 weights each point by sg[1 / (e + c)^p] (MeanFlow's adaptive loss weighting, Geng et
    al., 2025): p = 1 is close to a robust (log-like) loss, which tames rare huge errors. The metrics stay plain
    squared errors either way.
    """
    err_u = (out.u.float() - target.u.float()).flatten(1).pow(2).sum(1)  # float32 even under bf16 autocast
    err_d = ((out.D.float() - target.D.float()) / div_scale).pow(2)
    err = err_u + d_weight * err_d
    if adaptive_power:
        err = err / (err.detach() + ADAPTIVE_EPS) ** adaptive_power
    return LossOutput(err.mean(), {f"{prefix}/u": err_u.mean().detach(), f"{prefix}/D": err_d.mean().detach()})


def teacher_jumps(model, x, t, s, target: Targets, *, d_weight=1.0, div_scale=1.0, adaptive_power=0.0) -> LossOutput:
    """Coverage: (u, D) at (x, t, s) regressed onto the teacher's own jump there (:func:`f2d2mini.coverage.jumps`),
    the mean over these points alone (the rare stiff jumps off the data weigh as much as the rule's whole part)."""
    return regress(model(x, t, s), target, d_weight, div_scale, "coverage", adaptive_power)


def tangent(model, target: Targets, x, t, *, d_weight=1.0, div_scale=1.0, adaptive_power=0.0) -> LossOutput:
    """Tangent condition: u(x, t, t) = v(x, t) and D(x, t, t) = -div v(x, t)."""
    return regress(model(x, t, t), target, d_weight, div_scale, "tangent", adaptive_power)


def shortcut_target(model, x, t, s) -> Targets:
    """The semigroup target: with r = (t + s) / 2 and x_r = x + (r - t) u(x, t, r), the average of the two half
    jumps, ((u(x, t, r) + u(x_r, r, s)) / 2, (D(x, t, r) + D(x_r, r, s)) / 2). Detached, and in float32 outside any
    bf16 autocast: D is R times the head's output (R in the thousands for images), too coarse in bf16."""
    r = (t + s) / 2
    with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
        first = model(x, t, r)
        second = model(x + times.per_point(r - t, x) * first.u, r, s)
        return Targets((first.u + second.u) / 2, (first.D + second.D) / 2)


def shortcut(model, teacher, x, t, s, *, d_weight=1.0, div_scale=1.0, divergence="exact", probes=1, generator=None,
             adaptive_power=0.0) -> LossOutput:
    """Semigroup rule: regress (u, D) at (x, t, s) onto :func:`shortcut_target`, the average of two half jumps.

    Its targets are the map's own, so it never calls ``teacher`` nor draws probes: ``teacher``, ``divergence``,
    ``probes`` and ``generator`` are accepted so that every rule takes the same arguments, and unused."""
    return regress(model(x, t, s), shortcut_target(model, x, t, s), d_weight, div_scale, "shortcut", adaptive_power)


def _jvp(fn, primals: tuple, tangents: tuple, device_type: str):
    """``torch.func.jvp`` in float32, outside any bf16 autocast; without torch's one-time notice that its
    forward-mode AD scripts a few decompositions (about torch's internals, not about the caller's code)."""
    from torch.func import jvp

    with torch.autocast(device_type, enabled=False), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
        return jvp(fn, primals, tangents)


def eulerian_prediction(model, v: torch.Tensor, x, t, s) -> FlowMapOutput:
    """The Eulerian prediction (u - (s - t) du/dt, D - (s - t) dD/dt) at (x, t, s), with gradients, where
    d/dt = d_t + v . grad_x is one forward-mode JVP with tangents (v, 1, 0) on (x, t, s). The exact map makes it
    equal to (v(x, t), -div v(x, t)): its end point does not move as its start slides along a trajectory."""
    out, dout = _jvp(model, (x, t, s), (v, torch.ones_like(t), torch.zeros_like(s)), x.device.type)
    gap = s - t
    return FlowMapOutput(out.u - times.per_point(gap, x) * dout.u, out.D - gap * dout.D)


def meanflow(model, teacher, x, t, s, *, d_weight=1.0, div_scale=1.0, divergence="exact", probes=1,
             generator=None, adaptive_power=0.0) -> LossOutput:
    """MeanFlow (Eulerian) rule: :func:`eulerian_prediction` <- sg[(v, -div v)] of the teacher at (x, t).

    The MeanFlow paper regresses u onto sg[v + (s - t) du/dt] instead: the same fixed point, but the map's own
    derivative sits inside the stop-gradient target, where nothing trains it, and a map accurate in value is often
    rough in its derivatives (book chapter 4 measures it: with that target the loss here stalls at about 5 and the
    4-step likelihood error is twice as large). With the derivative on the prediction side, as the Lagrangian rule
    has it, the loss trains it too.
    """
    target = teacher_targets(teacher, x, t, divergence, probes, generator)
    pred = eulerian_prediction(model, target.u, x, t, s)
    return regress(pred, target, d_weight, div_scale, "meanflow", adaptive_power)


class LagrangianPrediction(NamedTuple):
    """The end point ``end`` X = x + (s - t) u and ``rates`` (d_s X, d_s[(s - t) D]), both with gradients."""

    end: torch.Tensor
    rates: FlowMapOutput


def lsd_prediction(model, x, t, s) -> LagrangianPrediction:
    """The Lagrangian prediction: the end point X = x + (s - t) u(x, t, s), its velocity d_s X = u + (s - t) d_s u
    and d_s[(s - t) D] = D + (s - t) d_s D, by one JVP in the end time s."""
    out, dout = _jvp(lambda s_: model(x, t, s_), (s,), (torch.ones_like(s),), x.device.type)
    gap = s - t
    end = x + times.per_point(gap, x) * out.u
    return LagrangianPrediction(end, FlowMapOutput(out.u + times.per_point(gap, x) * dout.u, out.D + gap * dout.D))


def lsd(model, teacher, x, t, s, *, d_weight=1.0, div_scale=1.0, divergence="exact", probes=1,
        generator=None, adaptive_power=0.0) -> LossOutput:
    """Lagrangian rule: d_s X <- sg[v(X, s)] and D + (s - t) d_s D <- sg[-div v(X, s)] at the end point X."""
    end, pred = lsd_prediction(model, x, t, s)
    return regress(pred, teacher_targets(teacher, end.detach(), s, divergence, probes, generator), d_weight,
                   div_scale, "lsd", adaptive_power)


RULE_LOSSES = {"shortcut": shortcut, "meanflow": meanflow, "lsd": lsd}
