"""Every public function rejects wrong shapes and non-finite values with a message naming the value."""

import pytest
import torch

import f2d2mini as f2

NAN = torch.tensor([[0.0, float("nan")]])
WRONG_DIM = torch.zeros(3, 5)
FLAT = torch.zeros(3)
gmm = f2.toy.density("gaussians8")
mlp = f2.nets.VelocityMLP(f2.nets.MLPConfig(width=8, depth=1, time_frequencies=2))

VALUE_CHECKED = {  # public entry points: shape and value checks
    "base.log_prob": f2.base.log_prob,
    "checkerboard.log_prob": f2.toy.density("checkerboard").log_prob,
    "gaussians8.log_prob": gmm.log_prob,
    "rings.log_prob": f2.toy.density("rings").log_prob,
    "ode.log_prob": lambda x: f2.ode.log_prob(gmm.velocity, x, "euler", 1),
    "ode.sample": lambda x: f2.ode.sample(gmm.velocity, x, steps=1),
}
SHAPE_CHECKED = {  # velocities run inside torch.func transforms, divergences inside training steps: shapes only
    "GaussianMixture.velocity": lambda x: gmm.velocity(x, 0.5),
    "VelocityMLP": lambda x: mlp(x, 0.5),
    "divergence.exact": lambda x: f2.divergence.exact(gmm.velocity, x, torch.zeros(len(x))).divergence,
    "divergence.hutchinson": lambda x: f2.divergence.hutchinson(gmm.velocity, x, torch.zeros(len(x))).divergence,
}


@pytest.mark.parametrize("fn", VALUE_CHECKED.values(), ids=VALUE_CHECKED.keys())
def test_non_finite_points_are_named(fn):
    with pytest.raises(ValueError, match="x0? has 1 non-finite entries"):
        fn(NAN)


@pytest.mark.parametrize("fn", {**VALUE_CHECKED, **SHAPE_CHECKED}.values(),
                         ids={**VALUE_CHECKED, **SHAPE_CHECKED}.keys())
def test_flat_input_is_named(fn):
    with pytest.raises(ValueError, match=r"must have shape \[batch, ...\].*got shape \(3,\)"):
        fn(FLAT)


@pytest.mark.parametrize("fn", [VALUE_CHECKED["gaussians8.log_prob"], *SHAPE_CHECKED.values()])
def test_wrong_dimension_is_named(fn):
    with pytest.raises(ValueError, match=r"must have shape \[batch, 2\], got shape \(3, 5\)"):
        fn(WRONG_DIM)


@pytest.mark.parametrize("t,match", [(torch.zeros(4), r"t must be a float or a tensor of shape \[3\]"),
                                     (float("inf"), "t must be finite"), ("0.5", "t must be a float")])
def test_bad_times_are_named(t, match):
    with pytest.raises((ValueError, TypeError), match=match):
        mlp(torch.zeros(3, 2), t)


def test_sample_counts_must_be_positive():
    with pytest.raises(ValueError, match="n must be an integer >= 1, got -1"):
        gmm.sample(-1)
