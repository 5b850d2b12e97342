"""Exact divergence and Hutchinson's estimator against the trace of known Jacobians."""

import math

import pytest
import torch

import f2d2mini as f2

D = 5


def linear_field(seed=0):
    a = torch.randn(D, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a, (lambda x: x @ a.T)


def test_exact_divergence_of_a_linear_field_is_the_trace():
    a, f = linear_field()
    x = torch.randn(7, D, dtype=torch.float64)
    out = f2.divergence.exact(f, x)
    assert torch.allclose(out.divergence, torch.trace(a).expand(7), atol=1e-12)
    assert torch.allclose(out.value, f(x))


def test_exact_divergence_of_a_nonlinear_field_matches_autograd():
    w = torch.randn(3, 3, dtype=torch.float64)
    f = lambda x, t: torch.tanh(x @ w) * t[:, None]
    x, t = torch.randn(6, 3, dtype=torch.float64), torch.rand(6, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian
    jacobians = [jac(lambda z, ti=ti: f(z[None], ti[None])[0], xi) for xi, ti in zip(x, t)]
    expected = torch.stack([torch.trace(j) for j in jacobians])
    assert torch.allclose(f2.divergence.exact(f, x, t).divergence, expected, atol=1e-12)


@pytest.mark.parametrize("noise", f2.divergence.NOISES)
def test_hutchinson_mean_is_the_trace(noise):
    """Over n probes the estimate's error has std sqrt(Var / n): Var = 2 |sym A|_F^2 (Gaussian), minus the
    diagonal part 2 sum_i A_ii^2 for Rademacher probes. Assert within 5 standard deviations."""
    a, f = linear_field(1)
    x = torch.randn(4, D, dtype=torch.float64)
    n = 20_000
    out = f2.divergence.hutchinson(f, x, n=n, noise=noise, generator=torch.Generator().manual_seed(0))
    sym = (a + a.T) / 2
    var = 2 * sym.pow(2).sum() - (2 * a.diagonal().pow(2).sum() if noise == "rademacher" else 0)
    tol = 5 * math.sqrt(var.item() / n)
    assert (out.divergence - torch.trace(a)).abs().max().item() < tol


def test_rademacher_is_exact_for_a_diagonal_field():
    a = torch.diag(torch.arange(1.0, D + 1, dtype=torch.float64))
    x = torch.randn(3, D, dtype=torch.float64)
    out = f2.divergence.hutchinson(lambda z: z @ a, x, n=1)
    assert torch.allclose(out.divergence, torch.trace(a).expand(3))


def test_divergence_rejects_bad_inputs():
    _, f = linear_field()
    out = f2.divergence.exact(f, torch.full((1, D), float("nan"), dtype=torch.float64))
    assert torch.isnan(out.value).all()  # values are not checked here (no host read in a training step): nan in, out
    with pytest.raises(ValueError, match="at least 2 axes"):
        f2.divergence.hutchinson(f, torch.zeros(D))
    with pytest.raises(ValueError, match="unknown noise 'uniform'"):
        f2.divergence.hutchinson(f, torch.zeros(2, D), noise="uniform")
    with pytest.raises(ValueError, match="probes must be an integer >= 1"):
        f2.divergence.hutchinson(f, torch.zeros(2, D), n=0)
