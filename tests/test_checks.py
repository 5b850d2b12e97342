"""Every public function rejects wrong shapes and non-finite values with a message naming the value."""

import numpy as np
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


# Issue 22's table, as a new user meets it with the shipped checkerboard map and teacher (the checkpoint rows are in
# test_checkpoint.py).
SHIPPED_MAP, SHIPPED_TEACHER = f2.pretrained.flow_map("checkerboard"), f2.pretrained.teacher("checkerboard")
FLOAT64 = torch.from_numpy(np.random.default_rng(0).normal(size=(5, 2)))  # numpy's default dtype


def test_float64_points_are_computed_and_returned_in_the_models_dtype():
    lp = SHIPPED_MAP.log_prob(FLOAT64)
    assert lp.dtype == torch.float32 and torch.equal(lp, SHIPPED_MAP.log_prob(FLOAT64.float()))
    ref = f2.ode.log_prob(SHIPPED_TEACHER, FLOAT64, "rk4", 8)
    assert ref.dtype == torch.float32 and torch.equal(ref, f2.ode.log_prob(SHIPPED_TEACHER, FLOAT64.float(), "rk4", 8))
    assert f2.ode.log_prob(gmm.velocity, FLOAT64, "rk4", 8).dtype == torch.float64  # no parameters: the points' own
    assert SHIPPED_MAP.log_prob(FLOAT64.half()).dtype == torch.float32  # and at least float32


def test_empty_batches_give_empty_results():
    empty = torch.zeros(0, 2)
    assert SHIPPED_MAP.log_prob(empty).shape == (0,)
    assert f2.flowmap.log_prob(SHIPPED_MAP, empty, 2).shape == (0,)
    res = f2.ode.likelihood(SHIPPED_TEACHER, empty)  # dopri5: one evaluation checks the shapes, nothing to solve
    assert res.log_prob.shape == (0,) and res.x0.shape == (0, 2) and res.nfe == 1
    assert f2.ode.log_prob(SHIPPED_TEACHER, empty, "euler", 4).shape == (0,)
    assert f2.ode.sample(SHIPPED_TEACHER, empty, 4).shape == (0, 2)
    assert SHIPPED_MAP.sample(0).shape == SHIPPED_MAP.sample(empty).shape == (0, 2)
    out = SHIPPED_MAP.sample_and_log_prob(empty, 2)
    assert out.x.shape == (0, 2) and out.log_prob.shape == (0,)
    assert f2.guidance.self_guide(SHIPPED_MAP, empty, lr=0.1).shape == (0, 2)
    with pytest.raises(ValueError, match=r"x must have shape \[batch, 2\], got shape \(0, 3\)"):
        f2.ode.log_prob(SHIPPED_TEACHER, torch.zeros(0, 3), "euler", 1)  # an empty batch is still checked
    with pytest.raises(ValueError, match=r"a holds 0 points .* at least 1"):
        f2.metrics.sliced_wasserstein(empty, empty)  # a mean of nothing is an error, not nan


@pytest.mark.parametrize("x,match", [
    (torch.full((2, 2), 1e30), r"x has points whose squared norm overflows torch.float32 \(\|x\| up to 1e\+30"),
    (torch.full((2, 2), 1e300, dtype=torch.float64), r"x has entries up to \|x\| = 1e\+300, beyond the range of "
                                                     r"torch.float32"),
    (torch.zeros(2, 2, dtype=torch.int64), r"x must be a floating-point tensor \(float16, bfloat16, float32, float64"),
    (torch.zeros(2, 2, device="meta"), "x is on device meta but the flow map is on cpu"),
])
def test_points_the_model_cannot_take_are_named(x, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SHIPPED_MAP.log_prob(x)


def test_huge_step_counts_are_refused_before_running():
    for call in (lambda: SHIPPED_MAP.log_prob(FLOAT64, steps=10**9), lambda: SHIPPED_MAP.sample(3, 10**9),
                 lambda: f2.ode.sample(SHIPPED_TEACHER, FLOAT64, 10**9),
                 lambda: f2.guidance.self_guide(SHIPPED_MAP, FLOAT64, lr=0.1, steps=10**9)):
        with pytest.raises(ValueError, match=r"steps must be at most 100000 .*got 1000000000"):
            call()


@pytest.mark.parametrize("lr", [float("nan"), 0.0, -0.1, float("inf"), "0.1"])
def test_bad_learning_rates_are_named(lr):
    with pytest.raises(ValueError, match=r"lr must be > 0 and finite, got"):
        f2.guidance.self_guide(SHIPPED_MAP, FLOAT64, lr=lr)
