"""div_profile: the exact averages of a piecewise-linear profile, its estimate from a teacher with a known
divergence, and an image map whose D starts as the profile's average."""

import numpy as np
import pytest
import torch
from helpers import TINY_NET

import f2d2mini as f2
from f2d2mini import div_profile
from f2d2mini.images import unet

C = 0.6  # the Gaussian path's data scale
DIM = 64  # its points: 1 x 8 x 8 images


def gaussian_rate(t: torch.Tensor) -> torch.Tensor:
    """-div v(x, t) of the Gaussian path to N(0, C^2 I) in DIM dimensions: the same at every x."""
    return -DIM * (C**2 * t - (1 - t)) / ((1 - t) ** 2 + C**2 * t**2)


def test_the_average_is_the_integral_of_the_linear_profile_and_a_semigroup():
    profile = div_profile.DivergenceProfile(8)
    knots = div_profile.knots(8)
    assert knots[0] == 0 and knots[-1] == 1 and (knots.diff() > 0).all() and knots.diff()[-1] < knots.diff()[0]
    profile.values.copy_(1 / (1.05 - knots))  # steep near t = 1, as an image teacher's
    g = torch.Generator().manual_seed(0)
    t, s = torch.rand(200, generator=g, dtype=torch.float64), torch.rand(200, generator=g, dtype=torch.float64)
    fine = torch.linspace(0, 1, 20_001, dtype=torch.float64)  # the trapezoid rule on a fine grid of the same profile
    m = profile.rate(fine)
    cumulative = torch.cat([m.new_zeros(1), torch.cumsum((m[1:] + m[:-1]) / 2 * fine.diff(), 0)])

    def by_hand(a, b):
        return torch.from_numpy((np.interp(b, fine, cumulative) - np.interp(a, fine, cumulative)) / (b - a).numpy())

    torch.testing.assert_close(profile.average(t, s), by_hand(t, s), rtol=1e-4, atol=0)
    torch.testing.assert_close(profile.average(t, s), profile.average(s, t))  # either direction
    r = (t + s) / 2
    torch.testing.assert_close((profile.average(t, r) + profile.average(r, s)) / 2, profile.average(t, s))
    torch.testing.assert_close(profile.average(t, t), profile.rate(t))  # the tangent: m(t)
    torch.testing.assert_close(profile.rate(knots), profile.values)
    assert profile.average(t.float(), s.float()).dtype == torch.float32


def test_the_estimate_of_a_gaussian_path_is_its_exact_divergence():
    """The Gaussian path's Jacobian is a multiple of the identity: Hutchinson's estimate is exact at every point,
    so the profile equals -div v at each knot to float rounding."""
    velocity = f2.gaussian_path.GaussianPathVelocity(C)
    data = C * torch.randn(100, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    points = f2.base.Batch(torch.randn(data.shape, generator=torch.Generator().manual_seed(3)), data)
    values = div_profile.estimate(velocity, points, 16, torch.Generator().manual_seed(2))
    torch.testing.assert_close(values, gaussian_rate(div_profile.knots(16)), rtol=1e-5, atol=1e-3)


def test_an_image_map_with_a_profile_starts_at_its_average_and_keeps_it_when_saved(tmp_path):
    teacher = unet.UNetVelocity(TINY_NET)
    model = unet.UNetFlowMap.from_teacher(teacher, 64.0, profile_intervals=8)
    model.profile.values.copy_(gaussian_rate(div_profile.knots(8)))
    x = torch.randn(4, 1, 8, 8)
    t, s = torch.tensor([1.0, 0.9, 0.5, 0.2]), torch.tensor([0.875, 0.95, 0.5, 0.0])
    out = model(x, t, s)
    torch.testing.assert_close(out.D, model.profile.average(t, s))  # the head's last layer starts at zero
    torch.testing.assert_close(out.u, teacher(x, t))
    f2.save(model, tmp_path / "map.pt")
    loaded = f2.load(tmp_path / "map.pt")
    assert loaded.config.profile_intervals == 8
    torch.testing.assert_close(loaded(x, t, s).D, out.D)


def test_a_profile_is_for_image_maps():
    config = f2.train.DistillConfig(profile_intervals=8, div_scale=2.0)
    with pytest.raises(ValueError, match="profile_intervals=8 is for U-Net maps of images"):
        f2.student.student_map(f2.toy.density("gaussians8").velocity, (2,), config)
