"""ODE solvers for sampling and the coupled likelihood ODE (book chapter 2).

Sampling integrates dx/dt = v(x, t) from t = 0 (noise) to t = 1 (data). Likelihood integrates the coupled ODE
(instantaneous change of variables) from t = 1 back to t = 0 with the tuple state (x, delta):

    dx/dt = v(x, t),    d delta/dt = div v(x, t),    log p_1(x) = log p_0(x(0)) + delta(0),

so delta(0) = -int_0^1 div v(x_tau, tau) dtau. Fixed-step explicit Runge-Kutta solvers are written here (one
loop over a Butcher tableau); adaptive reference solves use torchdiffeq, with the error controlled per sample
(``error_norm="sample"``): every point of a batch is solved to the tolerance, not only the batch on average.
:func:`sample` and :func:`likelihood` take points of any floating dtype and compute in the velocity's
(:mod:`f2d2mini.checks`); an empty batch gives empty results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from f2d2mini import base, checks
from f2d2mini import divergence as div

__all__ = ["TABLEAUS", "ADAPTIVE", "SOLVERS", "DIVERGENCES", "DEFAULT_TOL", "ERROR_NORMS", "MAX_NFE", "SAMPLE_STEPS",
           "ODESolution", "Likelihood", "NFELimitError", "per_sample_norm", "integrate", "coupled", "sample",
           "likelihood", "log_prob"]

State = tuple[torch.Tensor, ...]
Rhs = Callable[[float, State], State]


class Tableau(NamedTuple):
    """An explicit Runge-Kutta method: stage k_i = f(t + c_i h, y + h sum_j a_ij k_j); y' = y + h sum_i b_i k_i."""

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]


TABLEAUS = {
    "euler": Tableau(a=((),), b=(1.0,), c=(0.0,)),
    "midpoint": Tableau(a=((), (0.5,)), b=(0.0, 1.0), c=(0.0, 0.5)),
    "heun": Tableau(a=((), (1.0,)), b=(0.5, 0.5), c=(0.0, 1.0)),
    "rk4": Tableau(a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
                   c=(0.0, 0.5, 0.5, 1.0)),
}
ADAPTIVE = ("dopri5", "dopri8", "bosh3")  # torchdiffeq's adaptive methods offered here
SOLVERS = (*TABLEAUS, *ADAPTIVE)
DIVERGENCES = ("exact", "hutchinson")
DEFAULT_TOL = 1e-5  # rtol = atol for adaptive reference solves
ERROR_NORMS = ("sample", "batch")  # adaptive error control: each sample's error, or the batch's RMS (torchdiffeq's)
MAX_NFE = 2000  # cap on an adaptive solve's rhs evaluations (trained teachers here need 100-300 at DEFAULT_TOL)
SAMPLE_STEPS = 100  # default Euler steps of sample(): a teacher's reference samples


class ODESolution(NamedTuple):
    """``state``: the solution at the end time (same structure as the initial state); ``nfe``: rhs evaluations;
    ``stops``: the states at the intermediate times asked for (``stops`` of :func:`integrate`)."""

    state: State
    nfe: int
    stops: tuple = ()


class Likelihood(NamedTuple):
    """Result of the coupled ODE: ``log_prob`` [B] of the data, the noise ``x0`` [B, *shape] it maps to,
    ``delta`` [B] = log p_1(x) - log p_0(x0) = -int_0^1 div v, and ``nfe`` velocity evaluations."""

    log_prob: torch.Tensor
    x0: torch.Tensor
    delta: torch.Tensor
    nfe: int


class NFELimitError(RuntimeError, ValueError):
    """An adaptive solve needed more right-hand-side evaluations than its ``max_nfe``: a ``RuntimeError``, and a
    ``ValueError`` too, since the arguments it names (``rtol``, ``atol``, ``max_nfe``) do not fit this field."""


def _combine(y: State, h: float, coefs: Sequence[float], ks: Sequence[State]) -> State:
    """y + h sum_j coefs_j k_j, for tuple states."""
    out = list(y)
    for coef, k in zip(coefs, ks):
        if coef:
            out = [a + (h * coef) * b for a, b in zip(out, k)]
    return tuple(out)


def _rk_step(rhs: Rhs, t: float, y: State, h: float, tab: Tableau) -> State:
    ks = []
    for a_i, c_i in zip(tab.a, tab.c):
        ks.append(rhs(t + c_i * h, _combine(y, h, a_i, ks)))
    return _combine(y, h, tab.b, ks)


def per_sample_norm(state: State) -> torch.Tensor:
    """The error norm of per-sample error control: each sample's RMS over its own entries of each state tensor
    (all of which share the batch axis), the largest over tensors and samples. A step is accepted only if every
    sample's error is within the tolerance; torchdiffeq's default RMS over the whole batch lets a tail point's error
    hide among many small ones."""
    return torch.stack([e.reshape(len(e), -1).pow(2).mean(1).sqrt() for e in state]).amax()


def integrate(rhs: Rhs, state: State, t0: float, t1: float, *, solver: str = "rk4", steps: int | None = None,
              rtol: float = DEFAULT_TOL, atol: float = DEFAULT_TOL, max_nfe: int = MAX_NFE,
              error_norm: str = "sample", stops: Sequence[float] = ()) -> ODESolution:
    """Solves dy/dt = rhs(t, y) from t0 to t1 (either direction) for a tuple state y.

    Args:
        rhs: ``(t: float, y: tuple) -> tuple`` of derivatives, same structure as y.
        state: the initial tuple of tensors.
        t0, t1: start and end times.
        solver: a fixed-step method (``euler``, ``midpoint``, ``heun``, ``rk4``; needs ``steps``) or an adaptive
            torchdiffeq method (``dopri5``, ``dopri8``, ``bosh3``; uses ``rtol``/``atol``, no ``steps``).
        steps: number of uniform steps of a fixed-step method.
        max_nfe: an adaptive method stops with :class:`NFELimitError` after this many rhs evaluations (a stiff or
            diverging field would otherwise run without end).
        error_norm: an adaptive method's error control: ``"sample"`` (:func:`per_sample_norm`, every tensor of the
            state ``[B, ...]``) or ``"batch"`` (torchdiffeq's RMS over all entries of each tensor).
        stops: times strictly between t0 and t1, in order, at which an adaptive method also reports the state
            (from its dense output, in one solve); they come back in ``ODESolution.stops``.
    """
    checks.choice(solver, SOLVERS, "solver")
    checks.choice(error_norm, ERROR_NORMS, "error_norm")
    if solver in ADAPTIVE:
        checks.positive_float(rtol, "rtol")
        checks.positive_float(atol, "atol")
        checks.positive_int(max_nfe, "max_nfe")
    nfe = 0

    def counted(t, y):
        nonlocal nfe
        if nfe >= max_nfe and solver in ADAPTIVE:
            raise NFELimitError(f"{solver} needed more than max_nfe={max_nfe} evaluations at rtol={rtol}, "
                                f"atol={atol} (reached t = {float(t):.4g} of [{t0}, {t1}]); loosen rtol/atol, "
                                f"raise max_nfe, or use a fixed-step solver: {', '.join(TABLEAUS)}")
        nfe += 1
        return tuple(rhs(float(t), y))

    if solver in TABLEAUS:
        if stops:
            raise ValueError(f"stops are reported by the adaptive solvers ({', '.join(ADAPTIVE)}), not by {solver!r}")
        if steps is None:
            raise ValueError(f"solver {solver!r} is fixed-step: pass steps (an integer >= 1)")
        checks.steps(steps)
        h = (t1 - t0) / steps
        y = tuple(state)
        for i in range(steps):
            y = _rk_step(counted, t0 + i * h, y, h, TABLEAUS[solver])
        return ODESolution(y, nfe)
    if steps is not None:
        raise ValueError(f"solver {solver!r} is adaptive (rtol/atol choose its steps): pass steps=None, "
                         f"or a fixed-step solver: {', '.join(TABLEAUS)}")
    if not len(state[0]):  # an empty batch: one evaluation checks the shapes; there is nothing to solve
        counted(t0, tuple(state))
        return ODESolution(tuple(state), nfe)
    from torchdiffeq import odeint  # imported here to keep `import f2d2mini` light

    times = torch.tensor([t0, *stops, t1], dtype=torch.float64)
    options = {"norm": per_sample_norm} if error_norm == "sample" else None
    ys = odeint(counted, tuple(state), times, method=solver, rtol=rtol, atol=atol, options=options)
    return ODESolution(tuple(y[-1] for y in ys), nfe, tuple(tuple(y[i] for y in ys) for i in range(1, len(stops) + 1)))


def _at(velocity, x: torch.Tensor, t: float) -> torch.Tensor:
    """Calls the velocity with t as a [B] tensor, as modules expect."""
    return velocity(x, torch.full((len(x),), t, dtype=x.dtype, device=x.device))


def sample(velocity, x0: torch.Tensor, steps: int | None = SAMPLE_STEPS, solver: str = "euler", *,
           rtol: float = DEFAULT_TOL, atol: float = DEFAULT_TOL) -> torch.Tensor:
    """Transports noise x0 ``[B, *shape]`` along dx/dt = v(x, t) from t = 0 to t = 1; returns x1 ``[B, *shape]`` in
    the velocity's dtype (:mod:`f2d2mini.checks`: float64 noise into a float32 model computes in float32).

    Raises:
        ValueError, TypeError: naming the argument: x0 of another shape, dtype or device, not finite, or too large
            for the dtype (x1 overflows it); steps outside 1..MAX_STEPS; an unknown solver.
    """
    x0 = checks.points(x0, velocity, "x0", owner="velocity")
    with torch.no_grad():
        sol = integrate(lambda t, y: (_at(velocity, y[0], t),), (x0,), 0.0, 1.0, solver=solver, steps=steps,
                        rtol=rtol, atol=atol)
    return checks.finite_result(sol.state[0], x0, "x0", "the sample")


def coupled(velocity, divergence: str = "exact", eps: torch.Tensor | None = None) -> Rhs:
    """The right-hand side of the coupled ODE, ``(t, (x, delta)) -> (v(x, t), div v(x, t))``: exact divergence, or
    Hutchinson's with the fixed probes ``eps`` ``[probes, B, *shape]`` (held along the path)."""
    checks.choice(divergence, DIVERGENCES, "divergence")
    if divergence == "hutchinson" and eps is None:
        raise ValueError("divergence 'hutchinson' needs its probes eps (f2d2mini.divergence.probes)")

    def rhs(t: float, y: State) -> State:
        tb = torch.full((len(y[0]),), t, dtype=y[0].dtype, device=y[0].device)
        out = div.exact(velocity, y[0], tb) if divergence == "exact" else div.hutchinson(velocity, y[0], tb, eps=eps)
        return out.value, out.divergence

    return rhs


def likelihood(velocity, x: torch.Tensor, solver: str = "dopri5", steps: int | None = None, *,
               divergence: str = "exact", probes: int = 1, noise: str = "rademacher", seed: int | None = 0,
               sigma0: float | None = None, rtol: float = DEFAULT_TOL, atol: float = DEFAULT_TOL,
               max_nfe: int = MAX_NFE, error_norm: str = "sample") -> Likelihood:
    """Log-likelihood of data x ``[B, *shape]`` by the coupled ODE from t = 1 to t = 0.

    log p_1(x) = log p_0(x(0)) - int_0^1 div v(x_tau, tau) dtau   (instantaneous change of variables).

    Args:
        velocity: ``v(x, t)`` with t a ``[B]`` tensor.
        x: data points ``[B, *shape]``.
        solver, steps, rtol, atol, max_nfe, error_norm: as in :func:`integrate` (adaptive solves control each
            point's error by default: the reference is right per point, not only on average).
        divergence: ``"exact"`` (trace of the Jacobian, d passes) or ``"hutchinson"`` (``probes`` fixed random
            vectors of kind ``noise`` drawn once from ``seed`` and held along the path).
        sigma0: standard deviation of the base p_0 = N(0, sigma0^2 I); by default the velocity's own (a trained model
            saves it in its config; :func:`f2d2mini.base.resolve_sigma0`), and a different one is an error.

    Returns:
        :class:`Likelihood` in the velocity's dtype (the dtype rule of :mod:`f2d2mini.checks`); an empty batch
        gives empty tensors.

    Raises:
        ValueError, TypeError: naming the argument: x of another shape, dtype or device, not finite, or so far out
            that its log-density overflows the dtype; unknown solver, divergence, noise or error_norm; steps,
            probes, rtol, atol or max_nfe out of range.
        NFELimitError: an adaptive solve needed more than ``max_nfe`` evaluations (a ValueError too).
    """
    sigma0 = base.resolve_sigma0(velocity, sigma0, "velocity")
    x = checks.points(x, velocity, owner="velocity")
    eps = div.probes(x, probes, noise, base.make_generator(seed, x.device)) if divergence == "hutchinson" else None
    rhs = coupled(velocity, divergence, eps)
    with torch.no_grad():
        delta0 = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        sol = integrate(rhs, (x, delta0), 1.0, 0.0, solver=solver, steps=steps, rtol=rtol, atol=atol,
                        max_nfe=max_nfe, error_norm=error_norm)
    x0 = checks.finite_result(sol.state[0], x, "x", "the noise that x flows back to")
    delta = checks.finite_result(sol.state[1], x, "x", "the divergence integral")
    return Likelihood(checks.finite_result(base.log_prob(x0, sigma0) + delta, x, "x", "log_prob"), x0, delta, sol.nfe)


def log_prob(velocity, x: torch.Tensor, solver: str = "dopri5", steps: int | None = None, **kwargs) -> torch.Tensor:
    """log p_1(x) ``[B]`` by the coupled ODE, in the velocity's dtype; the arguments and errors of
    :func:`likelihood`."""
    return likelihood(velocity, x, solver, steps, **kwargs).log_prob

