"""The joint flow map (u, D) and few-step sampling and likelihood with it (book chapters 3-5).

A flow map jumps from time t to time s in one evaluation, for the sample and its log-density together:

    x_s = x_t + (s - t) u(x_t, t, s),        log p_s(x_s) = log p_t(x_t) + (s - t) D(x_t, t, s),

where u is the average velocity and D the average of minus the divergence along the path (natural units,
nats per unit time). On the diagonal u(x, t, t) = v(x, t) and D(x, t, t) = -div v(x, t).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from f2d2mini import base, checkpoint, checks, coverage, nets
from f2d2mini.times import per_point

__all__ = ["FlowMapOutput", "FlowMapConfig", "JointFlowMap", "ODEFlowMap", "Jumps", "Samples", "jumps", "sample",
           "sample_and_log_prob", "log_prob", "trusted", "backward_times", "REVERSALS", "EVAL_STEPS", "FewStepMethods"]

REVERSALS = ("exact", "first_order")
EVAL_STEPS = (1, 2, 4, 8)  # the numbers of jumps K that benchmarks, chapters and step-pair training use


class FlowMapOutput(NamedTuple):
    """``u``: average velocity ``[B, *shape]``; ``D``: average of -div v in nats per unit time ``[B]``."""

    u: torch.Tensor
    D: torch.Tensor


class Jumps(NamedTuple):
    """Result of K jumps: the end points ``x`` and ``delta`` = sum_k (tau_{k+1} - tau_k) D_k ``[B]``."""

    x: torch.Tensor
    delta: torch.Tensor


class Samples(NamedTuple):
    """Few-step samples ``x`` ``[B, *shape]`` and the model's log-density of each, ``log_prob`` ``[B]``."""

    x: torch.Tensor
    log_prob: torch.Tensor


@dataclass(frozen=True)
class FlowMapConfig(nets.MLPConfig):
    """Architecture of the 2-D :class:`JointFlowMap`: the velocity MLP's fields (its base sigma0 among them) and
    the D scale."""

    div_scale: float = 1.0  # R: the scalar head regresses D / R


class FewStepMethods:
    """``model.sample``, ``model.sample_and_log_prob`` and ``model.log_prob`` for a flow-map module with
    ``config.sigma0`` and ``event_shape``. Points of any floating dtype are computed and returned in the model's
    dtype (the rule of :mod:`f2d2mini.checks`); an empty batch (or ``n = 0``) gives empty results; a bad argument
    is a ``ValueError``/``TypeError`` that names it."""

    def sample(self, n_or_x0, steps: int = 2, *, seed: int | None = None) -> torch.Tensor:
        """Few-step samples ``[B, *event_shape]`` from n fresh draws of the base (or from a noise tensor); see
        :func:`sample`."""
        return sample(self, self._noise(n_or_x0, seed), steps)

    def sample_and_log_prob(self, n_or_x0, steps: int = 2, *, seed: int | None = None) -> Samples:
        """Few-step samples and the model's log-density of each, for free; see :func:`sample_and_log_prob`."""
        return sample_and_log_prob(self, self._noise(n_or_x0, seed), steps)

    def _noise(self, n_or_x0, seed: int | None) -> torch.Tensor:
        if isinstance(n_or_x0, torch.Tensor):
            return n_or_x0
        n = checks.integer(n_or_x0, "n_or_x0", minimum=0, kind="a number of draws (an integer >= 0) or a noise "
                           f"tensor [batch, {', '.join(map(str, self.event_shape))}]")
        device = next(self.parameters()).device
        return base.sample(n, self.event_shape, self.config.sigma0, seed=seed, device=device)

    def log_prob(self, x: torch.Tensor, steps: int = 4, reversal: str = "exact") -> torch.Tensor:
        """Few-step log-likelihood of data x ``[B, *event_shape]``; see :func:`log_prob`."""
        return log_prob(self, x, steps, reversal=reversal)


@checkpoint.register
class JointFlowMap(FewStepMethods, nn.Module):
    """An MLP on [features(x), embed(t), embed(s)] with a velocity head u (d outputs) and a divergence head D.

    Call ``model(x, t, s) -> FlowMapOutput(u, D)`` with x ``[B, d]`` and t, s floats or ``[B]`` tensors.
    """

    def __init__(self, config: FlowMapConfig = FlowMapConfig()):
        super().__init__()
        self.config = config
        self.embed = nets.TimeEmbedding(config.time_frequencies, config.max_frequency)
        self.features = nets.FourierFeatures(config.dim, config.space_features, config.space_scale)
        self.net = nets.MLP(self.features.dim + 2 * self.embed.dim, config.dim + 1, config.width, config.depth)

    @classmethod
    def from_teacher(cls, teacher: nets.VelocityMLP, div_scale: float = 1.0) -> JointFlowMap:
        """A map with u(x, t, s) = v(x, t) for every s and D = 0: the teacher's weights (and base sigma0), zero
        weights on embed(s). The warm start of phased training: the velocity part starts at Euler's one-step answer.
        """
        tc = teacher.config
        model = cls(FlowMapConfig(**asdict(tc), div_scale=div_scale))
        src, dst = teacher.net, model.net
        with torch.no_grad():
            model.features.B.copy_(teacher.features.B)
            for layer in dst:
                if isinstance(layer, nn.Linear):
                    layer.weight.zero_()
                    layer.bias.zero_()
            first_in = teacher.features.dim + teacher.embed.dim
            dst[0].weight[:, :first_in] = src[0].weight
            dst[0].bias.copy_(src[0].bias)
            for a, b in zip(list(src)[1:-1], list(dst)[1:-1]):
                if isinstance(a, nn.Linear):
                    b.load_state_dict(a.state_dict())
            dst[-1].weight[: tc.dim] = src[-1].weight
            dst[-1].bias[: tc.dim] = src[-1].bias
        return model

    def forward(self, x: torch.Tensor, t, s) -> FlowMapOutput:
        checks.batch(x, dim=self.config.dim, ndim=2, finite=False)
        h = self.net(torch.cat([self.features(x), self.embed.pair(t, s, x)], dim=1))
        return FlowMapOutput(h[:, : self.config.dim], self.config.div_scale * h[:, self.config.dim])

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one point: ``(d,)``."""
        return (self.config.dim,)


class ODEFlowMap(nn.Module):
    """The flow map of a velocity computed by solving ODEs: the ground truth a trained map is compared with.

    With tau in [0, 1] and a(tau) = t + tau (s - t) per sample, it integrates
    dx/dtau = (s - t) v(x, a),  dU/dtau = v(x, a),  dD/dtau = -div v(x, a),
    so u = U(1) is the average velocity and D = D(1) the average of -div v, exactly on the diagonal s = t.

    Args:
        velocity: ``v(x, t)`` (e.g. ``GaussianMixture.velocity``).
        solver, steps: a fixed-step solver of :func:`f2d2mini.ode.integrate` and its number of steps.
    """

    def __init__(self, velocity, solver: str = "rk4", steps: int = 32):
        super().__init__()
        self.velocity, self.solver, self.steps = velocity, solver, steps
        self.region = coverage.Region(math.inf)  # computed, not learned: as right off the data as on it

    def forward(self, x: torch.Tensor, t, s) -> FlowMapOutput:
        from f2d2mini import divergence, ode

        t, s = checks.time(t, len(x), x, "t"), checks.time(s, len(x), x, "s")
        gap = per_point(s, x) - per_point(t, x)

        def rhs(tau, y):
            out = divergence.exact(self.velocity, y[0], t + tau * (s - t))
            return gap * out.value, out.value, -out.divergence

        zeros = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        sol = ode.integrate(rhs, (x, torch.zeros_like(x), zeros), 0.0, 1.0, solver=self.solver, steps=self.steps)
        return FlowMapOutput(sol.state[1], sol.state[2])


def jumps(model, x: torch.Tensor, times: torch.Tensor, reversal: str = "exact") -> Jumps:
    """Jumps x along ``times`` (tau_0, ..., tau_K), accumulating sum_k (tau_{k+1} - tau_k) D(x_k, tau_k, tau_{k+1}).

    ``reversal="first_order"`` (backward grids only) is the reference code's approximation
    x_{t-h} = x_t - h u(x_t, t, t + h), with D queried at (x_t, t, t + h) too: forward queries run backwards.
    """
    checks.choice(reversal, REVERSALS, "reversal")
    delta = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    for a, b in zip(times[:-1].tolist(), times[1:].tolist()):
        h = b - a
        out = model(x, a, b) if reversal == "exact" else model(x, a, a - h)
        x = x + h * out.u
        delta = delta + h * out.D
    return Jumps(x, delta)


def _forward(model, x0: torch.Tensor, steps: int) -> tuple[torch.Tensor, Jumps]:
    """The checked noise (in the model's dtype) and its K forward jumps."""
    x0 = checks.points(x0, model, "x0", owner="flow map")
    checks.steps(steps)
    with torch.no_grad():
        out = jumps(model, x0, torch.linspace(0.0, 1.0, steps + 1))
    return x0, out._replace(x=checks.finite_result(out.x, x0, "x0", "the sample"))


def sample(model, x0: torch.Tensor, steps: int) -> torch.Tensor:
    """K forward jumps 0 = tau_0 < ... < tau_K = 1 from noise x0 ``[B, *shape]``; returns x1 ``[B, *shape]`` in the
    model's dtype (:mod:`f2d2mini.checks`).

    Raises:
        ValueError, TypeError: naming the argument: x0 of another shape, dtype or device, not finite, or too large
            for the model's dtype; steps outside 1..MAX_STEPS.
    """
    return _forward(model, x0, steps)[1].x


def sample_and_log_prob(model, x0: torch.Tensor, steps: int, *, sigma0: float | None = None) -> Samples:
    """K forward jumps from noise x0 ``[B, *shape]``, tracking log p_1(x1) = log p_0(x0) + sum_k (tau_{k+1} - tau_k)
    D_k: the model's log-density of every sample it draws, for free, both in the model's dtype. The base is the
    model's (``sigma0``: see :func:`f2d2mini.base.resolve_sigma0`). Raises as :func:`sample` does."""
    sigma0 = base.resolve_sigma0(model, sigma0, "flow map")
    x0, out = _forward(model, x0, steps)
    return Samples(out.x, checks.finite_result(base.log_prob(x0, sigma0) + out.delta, x0, "x0", "log_prob"))


def log_prob(model, x: torch.Tensor, steps: int = 4, *, reversal: str = "exact",
             sigma0: float | None = None) -> torch.Tensor:
    """K-step log-likelihood of data x ``[B, *shape]``: backward jumps 1 = tau_0 > ... > tau_K = 0, then
    log p_1(x) = log p_0(x_K) - sum_k (tau_{k+1} - tau_k) D(x_k, tau_k, tau_{k+1}). K evaluations, no autograd.
    The base is the model's (``sigma0``: see :func:`f2d2mini.base.resolve_sigma0`).

    Returns:
        ``[B]`` log-densities in the model's dtype (float64 data into a float32 map computes in float32:
        :mod:`f2d2mini.checks`); ``[0]`` for an empty batch.

    Raises:
        ValueError, TypeError: naming the argument: x of another shape, dtype or device, not finite, or so far out
            that its log-density overflows the model's dtype; steps outside 1..MAX_STEPS; an unknown reversal.
    """
    sigma0 = base.resolve_sigma0(model, sigma0, "flow map")
    x = checks.points(x, model, owner="flow map")
    checks.steps(steps)
    checks.choice(reversal, REVERSALS, "reversal")
    coverage.warn_outside(model, x)
    with torch.inference_mode():  # no autograd at all; the result below is computed outside, an ordinary tensor
        out = jumps(model, x, backward_times(steps), reversal)
    log_p = base.log_density(out.x, sigma0) - out.delta
    if not torch.isfinite(log_p).all():  # one check when all is well; else name what overflowed first
        checks.finite_result(out.x, x, "x", "the noise that x jumps back to")
        checks.finite_result(log_p, x, "x", "log_prob")
    coverage.warn_endpoints(model, out.x, sigma0, steps)
    return log_p


def backward_times(steps: int) -> torch.Tensor:
    """The times 1 = tau_0 > tau_1 > ... > tau_K = 0 of K = ``steps`` equal backward jumps."""
    return torch.linspace(1.0, 0.0, steps + 1)


def trusted(model, x: torch.Tensor, steps: int = 4) -> torch.Tensor:
    """``[B]`` booleans: the points of ``x`` whose K-step likelihood the map can be trusted with, inside its
    ``region`` and with backward jumps that land inside its ``noise_band`` (a map with neither: every point). A
    costlier check, of the map's own consistency: :func:`f2d2mini.consistency.consistent`."""
    x = checks.points(x, model, owner="flow map")
    region, band = getattr(model, "region", None), getattr(model, "noise_band", None)
    inside = region.contains(x) if region is not None else torch.ones(len(x), dtype=torch.bool, device=x.device)
    if band is not None:
        with torch.no_grad():
            end = jumps(model, x, backward_times(steps)).x
        inside &= band.contains(end, base.resolve_sigma0(model, name="flow map"))
    return inside
