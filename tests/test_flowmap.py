"""The joint flow map and its losses against the exact flow of the closed-form Gaussian mixture."""

import math

import pytest
import torch

import f2d2mini as f2
from f2d2mini.flowmap import FlowMapConfig, JointFlowMap, ODEFlowMap

GMM = f2.toy.density("gaussians8")
EXACT = ODEFlowMap(GMM.velocity, "rk4", 64)  # 4th order: errors below 1e-5 here (1e-3 with 16 steps)
COARSE = ODEFlowMap(GMM.velocity, "rk4", 16)  # where 1e-3 does not matter


def points(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 2.5 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    t, s = torch.rand(n, generator=g, dtype=torch.float64), torch.rand(n, generator=g, dtype=torch.float64)
    return x, t, s


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


def test_eulerian_prediction_subtracts_a_finite_difference_total_derivative():
    """d/dt u(x_t, t, s) along dx/dt = v: (u(x + h v, t + h, s) - u(x - h v, t - h, s)) / 2h, to O(h^2); the
    prediction u - (s - t) du/dt keeps its gradient (the MeanFlow rule trains the derivative)."""
    torch.manual_seed(0)
    model = JointFlowMap(FlowMapConfig(width=32, depth=2, time_frequencies=3)).double()
    x, t, s = points(16)
    v = torch.randn_like(x)
    pred = f2.losses.eulerian_prediction(model, v, x, t, s)
    h = 1e-5
    with torch.no_grad():
        ahead, behind, now = model(x + h * v, t + h, s), model(x - h * v, t - h, s), model(x, t, s)
    du, dd = (ahead.u - behind.u) / (2 * h), (ahead.D - behind.D) / (2 * h)
    assert torch.allclose(pred.u, now.u - (s - t)[:, None] * du, atol=1e-7)
    assert torch.allclose(pred.D, now.D - (s - t) * dd, atol=1e-7)
    assert pred.u.requires_grad and pred.D.requires_grad


def test_lsd_prediction_is_the_end_point_velocity():
    torch.manual_seed(0)
    model = JointFlowMap(FlowMapConfig(width=32, depth=2, time_frequencies=3)).double()
    x, t, s = points(16)
    end, pred = f2.losses.lsd_prediction(model, x, t, s)
    h = 1e-5
    with torch.no_grad():
        ahead, behind = model(x, t, s + h), model(x, t, s - h)
    x_ahead, x_behind = x + (s + h - t)[:, None] * ahead.u, x + (s - h - t)[:, None] * behind.u
    assert torch.allclose(pred.u, (x_ahead - x_behind) / (2 * h), atol=1e-7)
    assert torch.allclose(pred.D, ((s + h - t) * ahead.D - (s - h - t) * behind.D) / (2 * h), atol=1e-7)
    assert torch.allclose(end, x + (s - t)[:, None] * model(x, t, s).u)


@pytest.mark.parametrize("rule", f2.losses.RULES)
def test_the_exact_map_has_zero_loss_under_every_rule(rule):
    x, t, s = points(32)
    out = f2.losses.RULE_LOSSES[rule](EXACT, GMM.velocity, x, t, s)
    assert out.loss.item() < 1e-8


def test_adaptive_weight_scales_each_points_gradient_by_one_over_its_error():
    u = torch.tensor([[0.0, 0.0], [3.0, 0.0]], requires_grad=True)
    D = torch.tensor([0.0, 0.0], requires_grad=True)
    target = f2.losses.Targets(torch.tensor([[0.1, 0.0], [0.0, 0.0]]), torch.tensor([0.0, 2.0]))
    d_weight, R, c = 0.5, 2.0, f2.losses.ADAPTIVE_EPS
    err = torch.tensor([0.01, 9.0 + d_weight * 1.0])  # |du|^2 + d_weight (dD / R)^2 per point
    plain = f2.losses.regress(f2.flowmap.FlowMapOutput(u, D), target, d_weight, R, "x")
    (g_plain,) = torch.autograd.grad(plain.loss, u)
    out = f2.losses.regress(f2.flowmap.FlowMapOutput(u, D), target, d_weight, R, "x", adaptive_power=1.0)
    (g,) = torch.autograd.grad(out.loss, u)
    assert math.isclose(out.loss.item(), (err / (err + c)).mean().item(), rel_tol=1e-6)
    assert torch.allclose(g, g_plain / (err + c)[:, None])  # the weight is a stop-gradient constant per point
    assert out.metrics == plain.metrics  # metrics stay plain squared errors


def test_from_teacher_starts_at_the_teachers_velocity():
    teacher = f2.nets.VelocityMLP(f2.nets.MLPConfig(width=16, depth=2, time_frequencies=3))
    model = JointFlowMap.from_teacher(teacher, div_scale=3.0)
    x, t, s = points(8)
    x, t, s = x.float(), t.float(), s.float()
    out = model(x, t, s)
    assert torch.allclose(out.u, teacher(x, t)) and torch.equal(out.D, torch.zeros(8))
    assert model.config.div_scale == 3.0


def test_self_guidance_raises_the_one_step_likelihood():
    torch.manual_seed(0)
    model = JointFlowMap(FlowMapConfig(width=32, depth=2, time_frequencies=3))
    x0 = f2.base.sample(256, (2,), seed=0)
    before = f2.guidance.one_step_log_prob(model, x0)
    lr = 0.05
    x_new = f2.guidance.self_guide(model, x0, lr=lr)
    after = f2.guidance.one_step_log_prob(model, x_new)
    assert (after > before).float().mean() > 0.9 and after.mean() > before.mean()
    assert torch.allclose((x_new - x0).abs(), torch.full_like(x0, lr), atol=1e-4)  # Adam's first step: lr sign(g)


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
    with pytest.raises(ValueError, match="unknown rule 'euler'; choose one of: shortcut, meanflow, lsd"):
        f2.train.distill(GMM.velocity, GMM, rule="euler")
    with pytest.raises(ValueError, match="batch_size 2 with diagonal_fraction 0.25 leaves 0 tangent and 2"):
        f2.distillation.distill_loss(GMM.velocity, None, "lsd", f2.train.DistillConfig(batch_size=2, div_scale=1.0))
    with pytest.raises(ValueError, match="leaves 4 tangent and 0 off-diagonal"):
        config = f2.train.DistillConfig(batch_size=4, diagonal_fraction=1.0, div_scale=1.0)
        f2.distillation.distill_loss(GMM.velocity, None, "lsd", config)
    with pytest.raises(ValueError, match="lr must be > 0"):
        f2.guidance.self_guide(model, torch.zeros(2, 2), lr=0.0)


def test_short_distillation_from_the_exact_gmm_velocity():
    """A short F2D2 run on the closed-form teacher gives K = 4 likelihoods near the exact density."""
    config = f2.train.DistillConfig(steps=500, warm_steps=100, batch_size=256, lr=2e-3, warmup=20, log_every=50,
                                    progress=False,
                                    net=f2.nets.MLPConfig(width=64, depth=3, time_frequencies=6))
    model = f2.train.distill(GMM.velocity, GMM, "lsd", config, seed=0)
    x = GMM.sample(1000, seed=4)
    err = (model.log_prob(x, steps=4) - GMM.log_prob(x)).abs().mean().item()
    base_err = (f2.base.log_prob(x) - GMM.log_prob(x)).abs().mean().item()  # an untrained identity map
    assert err < 1.0 and err < base_err / 3, (err, base_err)  # loose: 500 steps of a fresh 64-wide map
    assert math.isfinite(model.history.loss[-1])
