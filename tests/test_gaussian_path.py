"""gaussian_path: the closed-form velocity of the path from N(0, I) to N(0, c^2 I) against the math, in float64: its
marginals N(0, s_t^2 I), s_t^2 = (1 - t)^2 + c^2 t^2, solve the continuity equation; its flow carries x0 to c x0
with the exact change of log-density; and its log_prob is the Normal log-density."""

import math

import pytest
import torch

from f2d2mini import ode
from f2d2mini.gaussian_path import GaussianPathVelocity

SCALES = (0.5, 1.0, 2.0)
SHAPES = ((3,), (1, 4, 4))
EPS64 = torch.finfo(torch.float64).eps


def marginal_log_prob(x, t, c):
    """log N(x; 0, s_t^2 I) per point, s_t^2 = (1 - t)^2 + c^2 t^2: x_t = (1 - t) x0 + t x1 for independent
    x0 ~ N(0, I), x1 ~ N(0, c^2 I)."""
    s2 = (1 - t) ** 2 + c**2 * t**2
    d = x[0].numel()
    return -0.5 * x.flatten(1).pow(2).sum(1) / s2 - 0.5 * d * torch.log(2 * math.pi * s2)


def points(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, *shape, generator=g, dtype=torch.float64)
    # a time per point, none at t = 1 / (1 + c^2) where s_t is smallest and v = 0 (0.8, 0.5, 0.2 for SCALES)
    return x, torch.tensor([0.05, 0.3, 0.45, 0.6, 0.75, 0.95], dtype=torch.float64)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("c", SCALES)
def test_the_marginals_solve_the_continuity_equation(c, shape):
    """d/dt log p_t + div v + v . grad log p_t = 0 at every point, with div v and grad log p_t by autograd and d/dt by
    autograd in t: each term is computed to float64 round-off, so the residual is within ~1e-10 of their size."""
    x, t = points(shape)
    x.requires_grad_(True)
    t.requires_grad_(True)
    log_p = marginal_log_prob(x, t, c)
    dlogp_dt, grad_log_p = torch.autograd.grad(log_p.sum(), (t, x))
    v = GaussianPathVelocity(c)(x, t.detach())
    assert v.shape == x.shape and v.dtype == torch.float64
    flat = v.flatten(1)
    div = sum(torch.autograd.grad(flat[:, i].sum(), x, retain_graph=True)[0].flatten(1)[:, i]
              for i in range(flat.shape[1]))
    transport = (flat * grad_log_p.flatten(1)).sum(1)
    residual = dlogp_dt + div + transport
    size = dlogp_dt.abs() + div.abs() + transport.abs()
    assert size.min() > 1e-3  # the terms are not all zero: the check says something at every point
    assert (residual.abs() / size).max() < 1e-10, residual


@pytest.mark.parametrize("c", SCALES)
def test_a_float_time_is_a_batch_of_that_time(c):
    x, _ = points((1, 4, 4))
    v = GaussianPathVelocity(c)
    assert torch.equal(v(x, 0.3), v(x, torch.full((6,), 0.3, dtype=torch.float64)))
    # at t = 0 the velocity is (c^2 * 0 - 1) / 1 x = -x; at t = 1 it is (c^2 - 0) / c^2 x = x
    torch.testing.assert_close(v(x, 0.0), -x, rtol=0, atol=0)
    torch.testing.assert_close(v(x, 1.0), x, rtol=EPS64, atol=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("c", SCALES)
def test_log_prob_is_the_normal_log_density_summed(c, shape):
    x, _ = points(shape, seed=1)
    scale = torch.tensor(c, dtype=torch.float64)
    expected = torch.distributions.Normal(torch.zeros_like(scale), scale).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(GaussianPathVelocity(c).log_prob(x), expected, rtol=1e-14, atol=1e-12)


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), float("inf")])
def test_a_scale_that_is_not_finite_and_positive_is_named(scale):
    with pytest.raises(ValueError, match=rf"scale must be a finite number > 0, got {scale!r}"):
        GaussianPathVelocity(scale)


TOL = 1e-10  # dopri5's rtol = atol for the flow checks


@pytest.mark.parametrize("c", (0.5, 2.0))
def test_the_ode_carries_noise_to_c_times_itself_with_the_exact_log_density(c):
    """dx/dt = (d s_t/dt / s_t) x, so x_t = s_t x0 and x_1 = c x0; the coupled ODE from c x0 must return x0 and
    log N(c x0; 0, c^2 I). Bound: each of at most nfe / 6 dopri5 steps errs by at most TOL (1 + |y|) per point, the
    errors carried at most by max(c, 1 / c), and the base's log-density turns an error e in x0 into |x0| e."""
    x0 = torch.randn(16, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    v = GaussianPathVelocity(c)
    x1 = ode.sample(v, x0, None, "dopri5", rtol=TOL, atol=TOL)
    res = ode.likelihood(v, c * x0, "dopri5", rtol=TOL, atol=TOL)
    size = 1 + max(c, 1.0) * x0.norm(dim=1).max().item()
    bound = (res.nfe / 6) * TOL * size * max(c, 1 / c)
    assert (x1 - c * x0).abs().max() < bound and (res.x0 - x0).abs().max() < bound
    assert (res.delta + 3 * math.log(c)).abs().max() < bound  # -int div v = -d log(s_1 / s_0)
    assert (res.log_prob - v.log_prob(c * x0)).abs().max() < bound * size
