"""metrics: log_density_gap is zero in expectation for exact draws and clearly negative for wrong ones; grid_score
measures a density on a grid against a reference."""

import math

import pytest
import torch

import f2d2mini as f2


def test_exact_draws_have_no_gap():
    torch.set_num_threads(1)
    dens = f2.toy.density("gaussians8")
    gaps = [f2.metrics.log_density_gap(dens, dens.sample(2_000, seed=100 + i), seed=i) for i in range(20)]
    z = torch.tensor([g.gap / g.std_error for g in gaps])
    assert z.abs().max() < 4  # each a standardised difference of two independent means
    assert abs(z.mean()) < 4 / 20**0.5  # and no bias across repeats


def test_wrong_draws_have_a_negative_gap():
    dens = f2.toy.density("gaussians8")
    shifted = dens.sample(2_000, seed=1) + torch.tensor([0.5, 0.0])  # off the modes by more than one std (0.4)
    out = f2.metrics.log_density_gap(dens, shifted, draws=4_000, seed=2)
    assert out.gap < -20 * out.std_error


def test_grid_score_of_a_density_against_itself_and_a_spurious_peak():
    """A standard normal on a grid integrates to 1 (up to the grid's quadrature error, tiny for h = 0.1 on a smooth
    density) and scores zero error against itself; a spurious peak shows as the overshoot and the integral."""
    points = f2.plots.grid(6.0, 121)
    cell = (12 / 120) ** 2
    lp = f2.base.log_prob(points)
    exact = f2.metrics.grid_score(lp, lp, cell)
    assert abs(exact.integral - 1) < 1e-6 and exact.mae == 0 and exact.off_by_1 == 0 and exact.overshoot == 0
    peaked = lp.clone()
    far = (points - torch.tensor([5.0, -5.0])).norm(dim=1).argmin()  # log p ~ -26.8 there: carries no mass
    peaked[far] = 2.0  # a peak of e^2 / e^-26.8 where the reference has none
    score = f2.metrics.grid_score(peaked, lp, cell)
    assert score.overshoot == pytest.approx(2.0 - lp[far].item())
    assert score.integral == pytest.approx(exact.integral + (math.exp(2.0) - lp[far].exp().item()) * cell)
    assert score.mae == 0  # the peak is outside the reference's mass region: the overshoot is what catches it
    peaked[far] = 1000.0  # e^1000 is past float64 (as the data-path map of chapter 5 is off the data): a score too
    tower = f2.metrics.grid_score(peaked, lp, cell)
    assert tower.integral == math.inf and tower.overshoot == pytest.approx(1000.0 - lp[far].item())
