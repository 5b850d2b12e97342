"""The toy densities and the closed-form Gaussian-mixture flow against exact math."""

import math

import pytest
import torch

import f2d2mini as f2

GRID = 800  # cells per side of the quadrature grid


def midpoint_grid(half_width: float, n: int = GRID):
    h = 2 * half_width / n
    ax = -half_width + h * (torch.arange(n, dtype=torch.float64) + 0.5)
    xx, yy = torch.meshgrid(ax, ax, indexing="xy")
    return torch.stack([xx.flatten(), yy.flatten()], 1), h * h


def test_checkerboard_integrates_to_one_and_is_uniform_on_32():
    dens = f2.toy.density("checkerboard")
    pts, area = midpoint_grid(5.0)  # cell edges fall between grid midpoints, so the sum is exact
    mass = dens.log_prob(pts).exp().sum() * area
    assert mass.item() == pytest.approx(1.0, abs=1e-9)
    x = dens.sample(20_000, seed=0)
    assert torch.allclose(dens.log_prob(x), torch.full((20_000,), -math.log(32)))


@pytest.mark.parametrize("name", ["gaussians8", "rings"])
def test_smooth_densities_integrate_to_one(name):
    pts, area = midpoint_grid(6.0)
    mass = f2.toy.density(name).log_prob(pts).exp().sum() * area
    assert mass.item() == pytest.approx(1.0, abs=2e-3)  # midpoint rule, h = 0.015, narrowest std 0.15


@pytest.mark.parametrize("name", f2.toy.NAMES)
def test_sampling_is_seeded_float32_and_2d(name):
    dens = f2.toy.density(name)
    a, b = dens.sample(500, seed=3), dens.sample(500, seed=3)
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, dens.sample(500, seed=4))


@pytest.mark.parametrize("name", ["moons", "spirals", "pinwheel"])
def test_densities_without_closed_form_say_so(name):
    with pytest.raises(NotImplementedError, match="checkerboard, gaussians8, rings"):
        f2.toy.density(name).log_prob(torch.zeros(3, 2))


def test_unknown_density_names_the_choices():
    with pytest.raises(ValueError, match="'nope'.*checkerboard.*pinwheel"):
        f2.toy.density("nope")


def random_mixture(k=3, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = 2 * torch.randn(k, d, generator=g, dtype=torch.float64)
    a = torch.randn(k, d, d, generator=g, dtype=torch.float64)
    covs = a @ a.transpose(1, 2) * 0.3 + 0.1 * torch.eye(d, dtype=torch.float64)
    return f2.toy.GaussianMixture(means, covs, torch.rand(k, generator=g, dtype=torch.float64) + 0.5)


def test_mixture_log_prob_matches_torch_distributions():
    gmm = random_mixture()
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(gmm.weights),
        torch.distributions.MultivariateNormal(gmm.means, gmm.covs))
    x = 3 * torch.randn(100, 2, dtype=torch.float64)
    assert torch.allclose(gmm.log_prob(x), mix.log_prob(x), atol=1e-10)
    s = gmm.sample(200_000, seed=1).double()
    mean = (gmm.weights[:, None] * gmm.means).sum(0)
    assert torch.allclose(s.mean(0), mean, atol=5 * s.std(0).max().item() / math.sqrt(len(s)))


def test_velocity_at_the_ends():
    gmm = random_mixture()
    x = torch.randn(50, 2, dtype=torch.float64)
    mean = (gmm.weights[:, None] * gmm.means).sum(0)
    assert torch.allclose(gmm.velocity(x, 0.0), mean - x, atol=1e-12)  # E[x1] - x0
    assert torch.allclose(gmm.velocity(x, 1.0), x, atol=1e-12)  # x1 - E[x0 | x1] = x1


def test_velocity_solves_the_continuity_equation():
    """d/dt log p_t + v . grad log p_t + div v = 0 for the exact marginals p_t and velocity v."""
    gmm = random_mixture(k=4)
    x = 2 * torch.randn(20, 2, dtype=torch.float64)
    for t in (0.1, 0.5, 0.9):
        xr = x.clone().requires_grad_(True)
        logp = gmm.marginal(t).log_prob(xr)
        (grad,) = torch.autograd.grad(logp.sum(), xr)
        h = 1e-5
        dlogp_dt = (gmm.marginal(t + h).log_prob(x) - gmm.marginal(t - h).log_prob(x)) / (2 * h)
        out = f2.divergence.exact(gmm.velocity, x, torch.full((20,), t, dtype=torch.float64))
        residual = dlogp_dt + (out.value * grad).sum(1) + out.divergence
        assert residual.abs().max().item() < 1e-6, t


def test_mixture_rejects_bad_parameters():
    with pytest.raises(ValueError, match="covs must have shape"):
        f2.toy.GaussianMixture(torch.zeros(2, 2), torch.eye(2).expand(3, 2, 2), torch.ones(2))
    with pytest.raises(ValueError, match="positive definite"):
        f2.toy.GaussianMixture(torch.zeros(1, 2), -torch.eye(2)[None], torch.ones(1))
    with pytest.raises(ValueError, match="weights"):
        f2.toy.GaussianMixture(torch.zeros(2, 2), torch.eye(2).expand(2, 2, 2), torch.tensor([1.0, -1.0]))
