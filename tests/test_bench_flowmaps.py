"""bench.flowmaps, the pieces of ``f2d2mini bench f2d2`` against exact answers: a likelihood row's errors, the grid
reference of the closed-form mixture (its density integrates to one on the grid), the grid rows of a map that solves
the mixture's exact flow and of maps off by known amounts, and the sample reference. (The whole suite through the
command: tests/test_cli.py; the sample reference inside the seeds suite: tests/test_bench_seeds.py.)"""

import math

import pytest
import torch
from helpers import COARSE, GMM

from f2d2mini import flowmap, metrics, plots
from f2d2mini.bench import flowmaps, solvers

torch.set_num_threads(1)

# The grid of the grid tests: 21 x 21 points on [-6, 6]^2, spacing h = 0.6. gaussians8's components (std 0.4, 7.5 std
# inside the box) lose no mass at its edges, so the grid's sum is the trapezoid rule of a smooth, periodic-like
# function: by Poisson summation it misses the integral by at most ~2 * 2 exp(-2 pi^2 std^2 / h^2) = 6e-4.
SIZE = 21
ALIASING = 1e-3
# The reference is dopri5 (rtol = atol = 1e-5 per step) in float32: its log-density is within ~1e-4 nats of the exact
# one where the mass is (measured 7e-5); 1e-3 bounds it.
REFERENCE_ERROR = 1e-3
# COARSE (RK4, 16 steps per jump of the exact velocity) is within ~1e-3 nats of the exact flow map (tests/helpers.py;
# the largest error on the grid, at K = 1, measured 7e-3 in the tails, 5e-4 on average); 1e-2 bounds it.
COARSE_ERROR = 1e-2


@pytest.fixture(scope="module")
def grid():
    """The suite's grid at SIZE points per side, with the exact velocity's dopri5 log-density as the reference."""
    return flowmaps.grid_reference(GMM.velocity, GMM, size=SIZE)


def test_likelihood_row_is_the_mean_and_mean_absolute_error_against_each_reference():
    log_prob = torch.tensor([1.0, 2.0, 3.0, 4.0])
    exact = torch.tensor([2.0, 2.0, 2.0, 2.0])  # errors -1, 0, 1, 2: mean 0.5, mean |.| 1
    teacher = torch.tensor([1.0, 4.0, 3.0, 3.5])  # errors 0, -2, 0, 0.5: mean -0.375, mean |.| 0.625
    row = flowmaps.likelihood_row(GMM, "f2d2 shortcut", 4, log_prob, exact, teacher)
    assert row == flowmaps.LikelihoodRow("gaussians8", "f2d2 shortcut", 4, 0.5, 1.0, -0.375, 0.625)


def test_grid_reference_of_the_exact_flow_integrates_to_one(grid):
    assert grid.size == SIZE and grid.points.shape == (SIZE * SIZE, 2)
    assert grid.points.min().item() == -flowmaps.GRID_LIMIT and grid.points.max().item() == flowmaps.GRID_LIMIT
    assert grid.cell_area == pytest.approx((2 * flowmaps.GRID_LIMIT / (SIZE - 1)) ** 2)
    exact = GMM.log_prob(grid.points)
    mass = exact >= metrics.MASS_LOG_PROB
    assert (grid.reference - exact)[mass].abs().max().item() < REFERENCE_ERROR
    assert abs(grid.exact_integral - 1) < ALIASING
    assert abs(grid.teacher_integral - grid.exact_integral) < REFERENCE_ERROR


class _FewStep:
    """A map's ``log_prob(x, K)``: the flow map of the exact velocity, or any function of (x, K)."""

    def __init__(self, log_prob):
        self.log_prob = log_prob


def test_grid_rows_of_the_exact_flow_map_agree_with_the_reference(grid):
    model = _FewStep(lambda x, k: flowmap.log_prob(COARSE, x, k))
    rows = flowmaps.grid_rows(model, "exact", GMM, grid)
    assert [row.steps for row in rows] == list(flowmap.EVAL_STEPS)
    for row in rows:
        assert (row.density, row.rule, row.size) == ("gaussians8", "exact", SIZE)
        assert (row.teacher_integral, row.exact_integral) == (grid.teacher_integral, grid.exact_integral)
        assert row.mae_mass < COARSE_ERROR and abs(row.overshoot) < COARSE_ERROR and row.off_by_1 == 0
        assert abs(row.integral - row.exact_integral) < COARSE_ERROR  # the same grid sum of a density within 1e-2


def test_grid_rows_score_a_map_off_by_known_amounts():
    """On a grid whose reference is the exact log-density, a map that is log p + 0.3 K at K jumps scores exactly:
    error 0.3 K everywhere, mass e^{0.3 K} times the exact sum, off by more than 1 nat from K = 4 on."""
    size = 11
    points = plots.grid(flowmaps.GRID_LIMIT, size).double()
    exact = GMM.log_prob(points)
    cell = (2 * flowmaps.GRID_LIMIT / (size - 1)) ** 2
    exact_sum = exact.exp().sum().item() * cell
    grid = flowmaps.Grid(size, points, exact, cell, exact_sum, exact_sum)
    rows = flowmaps.grid_rows(_FewStep(lambda x, k: GMM.log_prob(x) + 0.3 * k), "shifted", GMM, grid)
    for row, k in zip(rows, flowmap.EVAL_STEPS):
        assert row.steps == k and row.mae_mass == pytest.approx(0.3 * k) and row.overshoot == pytest.approx(0.3 * k)
        assert row.integral == pytest.approx(math.exp(0.3 * k) * exact_sum, rel=1e-12)
        assert row.off_by_1 == (1.0 if 0.3 * k > 1 else 0.0)


def test_sample_reference_is_fresh_data_and_standard_noise():
    """Held-out seeds: the same data and noise at every call, the data not the likelihood points of the suite, the
    noise N(0, 1) (the mixture's base)."""
    first, again = flowmaps.sample_reference(GMM.velocity, GMM), flowmaps.sample_reference(GMM.velocity, GMM)
    n = flowmaps.N_SAMPLES
    assert first.data.shape == first.noise.shape == (n, 2)
    assert torch.equal(first.data, again.data) and torch.equal(first.noise, again.noise)
    assert not torch.equal(first.data, solvers.heldout(GMM, n))
    # 2n draws of N(0, 1): the mean's standard error is 1 / sqrt(2n) = 0.011, the std's 1 / sqrt(4n) = 0.008
    assert abs(first.noise.mean().item()) < 0.06 and abs(first.noise.std().item() - 1) < 0.05


def test_sample_reference_scores_the_teachers_samples_against_the_data():
    """A teacher that does not move the noise scores the noise's own distance to the data; the exact velocity's
    samples are as close to the data as a second draw of the mixture."""
    still = flowmaps.sample_reference(lambda x, t: torch.zeros_like(x), GMM)
    assert still.swd_teacher == metrics.sliced_wasserstein(still.noise, still.data)
    exact = flowmaps.sample_reference(GMM.velocity, GMM)
    # two independent draws of 4,000 points of the mixture lie 0.05-0.12 apart (sliced W2, seeds 0-4); Euler's 100
    # steps move the samples 0.02 (RMS) from the exact flow's. The noise lies 1.2 from the data.
    assert exact.swd_teacher < 0.2 < still.swd_teacher
