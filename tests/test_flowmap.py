"""The joint flow map (u, D) against the exact flow of the closed-form Gaussian mixture: the tangent condition,
the semigroup identity, K-step likelihoods and sampling, and the warm start from a teacher."""

import math

import pytest
import torch
from helpers import COARSE, EXACT, GMM, points

import f2d2mini as f2
from f2d2mini.flowmap import FlowMapConfig, JointFlowMap


def test_ode_flow_map_meets_the_tangent_condition():
    x, t, _ = points()
    out = COARSE(x, t, t)  # at s = t every step is exact
    ref = f2.divergence.exact(GMM.velocity, x, t)
    assert torch.allclose(out.u, ref.value, atol=1e-12) and torch.allclose(out.D, -ref.divergence, atol=1e-12)


def test_ode_flow_map_obeys_the_semigroup_identity():
    """Jumping t -> r -> s equals jumping t -> s, for x and for log-density alike (both directions of time)."""
    x, t, s = points()
    r = (t + s) / 2
    whole = EXACT(x, t, s)
    first = EXACT(x, t, r)
    x_r = x + (r - t)[:, None] * first.u
    second = EXACT(x_r, r, s)
    assert torch.allclose((s - t)[:, None] * whole.u, (r - t)[:, None] * first.u + (s - r)[:, None] * second.u,
                          atol=1e-6)
    assert torch.allclose((s - t) * whole.D, (r - t) * first.D + (s - r) * second.D, atol=1e-6)
    # the shortcut rule's target is the average of the half jumps: exact for the exact map
    assert torch.allclose(whole.u, (first.u + second.u) / 2, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 3])
def test_k_step_log_prob_of_an_exact_map_is_the_exact_density(steps):
    x = GMM.sample(64, seed=1).double()
    lp = f2.flowmap.log_prob(EXACT, x, steps)
    assert (lp - GMM.log_prob(x)).abs().max().item() < 1e-4


def test_sampling_with_an_exact_map_tracks_the_log_density():
    x0 = f2.base.sample(64, (2,), seed=2, dtype=torch.float64)
    x1, lp = f2.flowmap.sample_and_log_prob(EXACT, x0, 2)
    assert (lp - GMM.log_prob(x1)).abs().max().item() < 1e-4


def test_first_order_reversal_is_only_approximate():
    """Even with exact jumps, reversing forward queries costs error that shrinks with K; genuine jumps have none."""
    x = GMM.sample(64, seed=3).double()
    exact = GMM.log_prob(x)
    errs = [(f2.flowmap.log_prob(COARSE, x, k, reversal="first_order") - exact).abs().mean().item() for k in (1, 4)]
    assert errs[0] > 0.5 and errs[1] < errs[0] / 2
    assert (f2.flowmap.log_prob(COARSE, x, 1) - exact).abs().mean().item() < 5e-3


def test_from_teacher_starts_at_the_teachers_velocity():
    teacher = f2.nets.VelocityMLP(f2.nets.MLPConfig(width=16, depth=2, time_frequencies=3))
    model = JointFlowMap.from_teacher(teacher, div_scale=3.0)
    x, t, s = points(8)
    x, t, s = x.float(), t.float(), s.float()
    out = model(x, t, s)
    assert torch.allclose(out.u, teacher(x, t)) and torch.equal(out.D, torch.zeros(8))
    assert model.config.div_scale == 3.0


@pytest.mark.parametrize("n", [0, 1, 7])
def test_float_times_are_embedded_once_and_give_what_a_batch_of_those_times_gives(n):
    torch.manual_seed(0)
    model = JointFlowMap(FlowMapConfig(width=16, depth=2, time_frequencies=3, space_features=4))
    x = torch.randn(n, 2)
    out = model(x, 0.75, 0.25)
    for t, s in [(torch.full((n,), 0.75), torch.full((n,), 0.25)), (0.75, torch.full((n,), 0.25)),
                 (torch.tensor(0.75), 0.25)]:
        other = model(x, t, s)
        assert torch.equal(out.u, other.u) and torch.equal(out.D, other.D)
    assert out.u.shape == (n, 2) and out.D.shape == (n,)
    if n > 1:  # the two times are not swapped
        assert not torch.equal(out.u, model(x, 0.25, 0.75).u)


def test_log_prob_returns_an_ordinary_tensor_that_autograd_can_use_as_a_constant():
    model = JointFlowMap(FlowMapConfig(width=16, depth=2, time_frequencies=3))
    log_p = model.log_prob(torch.randn(5, 2), 2)
    assert not log_p.is_inference() and not log_p.requires_grad
    weights = torch.ones(5, requires_grad=True)
    (log_p * weights).sum().backward()  # an inference tensor could not be saved for backward
    assert torch.equal(weights.grad, log_p)


@pytest.mark.parametrize("head,what", [(slice(0, 2), "the noise that x jumps back to"), (slice(2, 3), "log_prob")])
def test_a_likelihood_that_overflows_names_what_overflowed_first(head, what):
    model = JointFlowMap(FlowMapConfig(width=8, depth=1, time_frequencies=2))
    with torch.no_grad():
        model.net[-1].bias[head] = math.inf  # u (the jumps leave float32) or D (the log-density does)
    with pytest.raises(ValueError, match=f"{what} is not finite for 3 of 3 points of x"):
        model.log_prob(torch.zeros(3, 2), 2)


@pytest.mark.parametrize("t,match", [(True, "t must be a float or a \\[batch\\] tensor, got bool"),
                                     (float("nan"), "t must be finite, got nan")])
def test_bad_float_times_of_a_map_are_named(t, match):
    model = JointFlowMap(FlowMapConfig(width=8, depth=1, time_frequencies=2))
    with pytest.raises((TypeError, ValueError), match=match):
        model(torch.zeros(3, 2), t, 0.5)


def test_bad_inputs_are_named():
    model = JointFlowMap(FlowMapConfig(width=8, depth=1, time_frequencies=2))
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        model.sample(4, steps=0)
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got -2"):
        model.log_prob(torch.zeros(3, 2), steps=-2)
    with pytest.raises(ValueError, match=r"must have shape \[batch, 2\], got shape \(3, 3\)"):
        model.log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="unknown reversal 'second_order'"):
        model.log_prob(torch.zeros(3, 2), reversal="second_order")
