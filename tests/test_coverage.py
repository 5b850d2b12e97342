"""Coverage: the teacher's backward flow of a square, where a coverage batch is drawn, and the warnings of a map
asked for a likelihood outside the region it was trained on."""

import dataclasses
import warnings

import pytest
import torch

import f2d2mini as f2
from f2d2mini import coverage

GMM = f2.toy.density("gaussians8")


def test_the_bank_holds_the_teachers_coupled_ode_from_a_uniform_square():
    bank = coverage.trajectories(GMM.velocity, 5.0, (2,), points=300, steps=4, seed=0)
    assert bank.x.shape == (5, 300, 2) and bank.delta.shape == (5, 300)
    start = bank.x[0]
    assert start.abs().max() <= 5.0 and start.abs().max() > 4.5 and (bank.delta[0] == 0).all()  # uniform in the square
    whole = f2.ode.likelihood(GMM.velocity, start, "rk4", 4 * coverage.SUBSTEPS)  # the same RK4 steps in one go
    torch.testing.assert_close(bank.x[-1], whole.x0)
    torch.testing.assert_close(bank.delta[-1], whole.delta)


def test_coverage_jumps_are_the_teachers_exact_jumps(monkeypatch):
    """u and D of a stored jump equal the exact flow map of the teacher (an RK4 solve of u and D) at (x, t, s);
    both solves fine enough (RK4, 128 and 64 steps) to agree to 1e-3 on this mixture."""
    monkeypatch.setattr(coverage, "SUBSTEPS", 16)
    bank = coverage.trajectories(GMM.velocity, 5.0, (2,), points=200, steps=8, seed=1)
    jump = coverage.jumps(bank, 64, torch.tensor(f2.flowmap.EVAL_STEPS), torch.Generator().manual_seed(0))
    steps_on_grid = 1 / (jump.s[:32] - jump.t[:32]).abs()
    assert set(steps_on_grid.round().tolist()) <= {1.0, 2.0, 4.0, 8.0}  # half are single steps of the K-grids
    assert (jump.s != jump.t).all()
    exact = f2.flowmap.ODEFlowMap(GMM.velocity, "rk4", 64)(jump.x, jump.t, jump.s)
    torch.testing.assert_close(jump.u, exact.u, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(jump.D, exact.D, atol=1e-3, rtol=1e-3)
    tangent = coverage.tangent_points(bank, 16, torch.Generator().manual_seed(0))
    k = torch.round((1 - tangent.t) * 8).long()
    assert torch.equal(tangent.t, tangent.s) and all((bank.x[k[i]] == tangent.x[i]).all(1).any() for i in range(16))


def test_a_map_warns_once_outside_its_region_and_names_it():
    model = f2.flowmap.JointFlowMap(f2.flowmap.FlowMapConfig(width=8, depth=1, time_frequencies=2))
    model.region = coverage.Region(6.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.log_prob(torch.full((4, 2), 5.9), steps=1)  # inside: silent
    with pytest.warns(coverage.OutsideRegionWarning, match=r"1 of 4 points lie outside .*\[-6, 6\]\^d"):
        model.log_prob(torch.tensor([[0.0, 0.0], [1.0, 1.0], [7.0, 0.0], [0.0, 0.0]]), steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.log_prob(torch.full((2, 2), 9.0), steps=1)  # once per model


def test_a_map_without_coverage_says_so_and_an_exact_map_never_warns():
    model = f2.flowmap.JointFlowMap(f2.flowmap.FlowMapConfig(width=8, depth=1, time_frequencies=2))
    with pytest.warns(coverage.OutsideRegionWarning, match="distilled on the data path alone"):
        model.log_prob(torch.zeros(2, 2), steps=1)
    exact = f2.flowmap.ODEFlowMap(GMM.velocity, "rk4", 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f2.flowmap.log_prob(exact, torch.full((2, 2), 100.0), 1)


def test_distillation_covers_a_share_of_each_part_and_saves_the_region(tmp_path):
    config = f2.train.DistillConfig(steps=3, warm_steps=1, batch_size=16, coverage_fraction=0.25,
                                    coverage_points=64, coverage_steps=8, progress=False,
                                    net=f2.nets.MLPConfig(width=8, depth=1, time_frequencies=2))
    parts = f2.distillation._sizes(config)
    assert (parts.diagonal, parts.covered_tangent, parts.off_diagonal, parts.covered_jumps) == (4, 1, 12, 3)
    model = f2.train.distill(GMM.velocity, GMM, "lsd", config)
    assert model.region == coverage.Region(config.coverage_box)
    assert {"coverage/u", "coverage/D"} <= set(model.history.metrics)
    f2.save(model, tmp_path / "map.pt")
    assert f2.load(tmp_path / "map.pt").region == model.region
    uncovered = dataclasses.replace(config, coverage_fraction=0.0)
    assert f2.distillation._sizes(uncovered).covered_jumps == 0
    assert f2.train.distill(GMM.velocity, GMM, "lsd", uncovered).region is None
    with pytest.raises(ValueError, match="coverage_steps 6 must be a multiple of every K"):
        f2.distillation._sizes(dataclasses.replace(config, coverage_steps=6))


def test_an_adaptive_bank_from_given_points_agrees_with_fine_fixed_steps(monkeypatch):
    """carry_back with dopri5 (one solve per chunk, stored states from its dense output) and with 32 RK4 steps per
    stored interval give the same trajectories of the same points, chunked or not."""
    x = (2 * torch.rand(300, 2, generator=torch.Generator().manual_seed(0)) - 1) * 5
    monkeypatch.setattr(coverage, "BANK_CHUNK", 128)  # three chunks
    adaptive = coverage.carry_back(GMM.velocity, x, 8, solver="dopri5", tol=1e-6)
    monkeypatch.setattr(coverage, "SUBSTEPS", 32)
    fixed = coverage.carry_back(GMM.velocity, x, 8)
    assert adaptive.x.shape == (9, 300, 2) and torch.equal(adaptive.x[0], x)
    torch.testing.assert_close(adaptive.x, fixed.x, atol=2e-4, rtol=0)
    torch.testing.assert_close(adaptive.delta, fixed.delta, atol=2e-4, rtol=0)


def test_a_bank_from_the_data_starts_at_data_points_and_covers_no_region(monkeypatch):
    """coverage_source="data": the trajectories start at points the data's draw gives (from the bank's own stream),
    the map learns the teacher's jumps on them, and no region off the data is claimed."""
    started = []
    carry_back = coverage.carry_back

    def spy(teacher, x, steps, **kwargs):
        started.append(x)
        return carry_back(teacher, x, steps, **kwargs)

    monkeypatch.setattr(coverage, "carry_back", spy)
    config = f2.train.DistillConfig(steps=3, warm_steps=1, batch_size=16, coverage_fraction=0.25,
                                    coverage_points=40, coverage_steps=8, coverage_source="data",
                                    coverage_solver="dopri5", progress=False,
                                    net=f2.nets.MLPConfig(width=8, depth=1, time_frequencies=2))
    model = f2.train.distill(GMM.velocity, GMM, "lsd", config)
    assert model.region is None and {"coverage/u", "coverage/D"} <= set(model.history.metrics)
    (x,) = started
    assert x.shape == (40, 2) and GMM.log_prob(x).min() > -12  # data points, not a uniform square
    with pytest.raises(ValueError, match="coverage_source 'grid'.*cube, data"):
        f2.train.distill(GMM.velocity, GMM, "lsd", dataclasses.replace(config, coverage_source="grid"))


def test_a_noise_band_trusts_the_points_whose_jumps_land_in_it():
    """The flow of the Gaussian path from N(0, I) to N(0, I) carries every image back to itself, so an image is in
    the band exactly when its own statistics are: twice the energy leaves it, and so does a smooth image with the
    energy of noise (a ramp: its neighbours almost equal). The band decides trust and the warning of log_prob."""
    exact = f2.flowmap.ODEFlowMap(f2.gaussian_path.GaussianPathVelocity(1.0), "rk4", 8)
    exact.noise_band = coverage.NoiseBand(0.8, 1.2, -0.3, 0.3)
    z = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    z = z / z.flatten(1).pow(2).mean(1).sqrt().view(-1, 1, 1, 1)  # |z|^2 / d = 1
    assert coverage.NoiseBand.correlation(z).abs().max() < 0.3  # white: 0 +- 1 / sqrt(112) = 0.094
    ramp = torch.linspace(-1, 1, 64).view(1, 1, 8, 8).expand(16, 1, 8, 8)
    ramp = ramp / ramp.flatten(1).pow(2).mean(1).sqrt().view(-1, 1, 1, 1)
    assert f2.flowmap.trusted(exact, z, 2).all() and not f2.flowmap.trusted(exact, 2 * z, 2).any()
    assert not f2.flowmap.trusted(exact, ramp, 2).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f2.flowmap.log_prob(exact, z, 2)
    with pytest.warns(coverage.OutsideRegionWarning, match=r"16 of 16 points jump back \(2 jumps\) outside .*"
                                                           r"\[0\.80, 1\.20\] and neighbour correlation in "
                                                           r"\[-0\.300, 0\.300\]"):
        f2.flowmap.log_prob(exact, 2 * z, 2)
    exact._warned_outside = False
    with pytest.warns(coverage.OutsideRegionWarning, match="16 of 16 points"):
        f2.flowmap.log_prob(exact, ramp, 2)


def test_the_neighbour_correlation_is_the_products_of_neighbours_over_the_mean_square():
    """By hand on a 2 x 2 image: pairs 1*2, 3*4 across and 1*3, 2*4 down, (2 + 12 + 3 + 8) / 4 over 30 / 4; in each
    channel alone; unchanged by the scale."""
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    torch.testing.assert_close(coverage.NoiseBand.correlation(x), torch.tensor([25 / 30]))
    torch.testing.assert_close(coverage.NoiseBand.correlation(-3 * x), torch.tensor([25 / 30]))
    two = torch.cat([x, torch.zeros_like(x)], 1)  # a second channel of zeros: pairs 8, mean square 30 / 8
    torch.testing.assert_close(coverage.NoiseBand.correlation(two), torch.tensor([25 / 30]))
    assert coverage.NoiseBand.correlation(torch.zeros(0, 1, 28, 28)).shape == (0,)


def test_a_map_with_a_noise_band_answers_an_empty_batch_and_float64():
    exact = f2.flowmap.ODEFlowMap(f2.gaussian_path.GaussianPathVelocity(1.0), "rk4", 8)
    exact.noise_band = coverage.NoiseBand(0.8, 1.2, -0.3, 0.3)
    assert f2.flowmap.log_prob(exact, torch.zeros(0, 1, 8, 8), 2).shape == (0,)
    assert f2.flowmap.trusted(exact, torch.zeros(0, 1, 8, 8), 2).shape == (0,)
    z = torch.randn(4, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    z = z / z.flatten(1).pow(2).mean(1).sqrt().view(-1, 1, 1, 1)
    assert f2.flowmap.trusted(exact, z, 2).all()


def test_the_neighbour_correlation_of_white_noise_is_zero_within_one_over_root_pairs():
    """Of 4,000 white-noise images of MNIST's size (1,512 neighbour pairs): mean 0 within four standard errors
    (sd / sqrt(n)), standard deviation 1 / sqrt(1512) within 5% (its estimate's error, 1 / sqrt(2n) = 1.1%, times
    four, plus the self-normalisation's O(1 / d))."""
    n, pairs = 4000, 2 * 28 * 27
    r = coverage.NoiseBand.correlation(torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 0.7)
    sd = pairs ** -0.5
    assert abs(r.mean().item()) < 4 * sd / n**0.5
    assert abs(r.std().item() / sd - 1) < 0.05


def test_a_calibrated_band_holds_every_landing_of_its_points_and_the_margins():
    """student.noise_band on the exact flow (every image lands on itself): the extremes of the points' own
    statistics, widened by the two margins."""
    exact = f2.flowmap.ODEFlowMap(f2.gaussian_path.GaussianPathVelocity(1.0), "rk4", 8)
    x1 = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    band = f2.student.noise_band(exact, x1)
    q, r = coverage.NoiseBand.statistic(x1, 1.0), coverage.NoiseBand.correlation(x1)
    expected = (q.min() - coverage.BAND_MARGIN, q.max() + coverage.BAND_MARGIN,
                r.min() - coverage.CORRELATION_MARGIN, r.max() + coverage.CORRELATION_MARGIN)
    torch.testing.assert_close(torch.tensor([band.low, band.high, band.corr_low, band.corr_high]),
                               torch.stack(expected), rtol=1e-4, atol=1e-4)
