"""The losses as pure functions: each rule's prediction against finite differences, zero loss for the exact map
under every rule, the adaptive weight, and float32 targets under bf16 autocast."""

import math

import pytest
import torch
from helpers import EXACT, GMM, TINY_NET, points, total_derivative

import f2d2mini as f2
from f2d2mini import losses
from f2d2mini.flowmap import FlowMapConfig, JointFlowMap
from f2d2mini.images import unet


def test_eulerian_prediction_subtracts_a_finite_difference_total_derivative():
    """d/dt u(x_t, t, s) along dx/dt = v: (u(x + h v, t + h, s) - u(x - h v, t - h, s)) / 2h, to O(h^2); the
    prediction u - (s - t) du/dt keeps its gradient (the MeanFlow rule trains the derivative)."""
    torch.manual_seed(0)
    model = JointFlowMap(FlowMapConfig(width=32, depth=2, time_frequencies=3)).double()
    x, t, s = points(16)
    v = torch.randn_like(x)
    pred = losses.eulerian_prediction(model, v, x, t, s)
    now, du, dd = total_derivative(model, v, x, t, s, h=1e-5)
    assert torch.allclose(pred.u, now.u - (s - t)[:, None] * du, atol=1e-7)
    assert torch.allclose(pred.D, now.D - (s - t) * dd, atol=1e-7)
    assert pred.u.requires_grad and pred.D.requires_grad


def test_lsd_prediction_is_the_end_point_velocity():
    torch.manual_seed(0)
    model = JointFlowMap(FlowMapConfig(width=32, depth=2, time_frequencies=3)).double()
    x, t, s = points(16)
    end, pred = losses.lsd_prediction(model, x, t, s)
    h = 1e-5
    with torch.no_grad():
        ahead, behind = model(x, t, s + h), model(x, t, s - h)
    x_ahead, x_behind = x + (s + h - t)[:, None] * ahead.u, x + (s - h - t)[:, None] * behind.u
    assert torch.allclose(pred.u, (x_ahead - x_behind) / (2 * h), atol=1e-7)
    assert torch.allclose(pred.D, ((s + h - t) * ahead.D - (s - h - t) * behind.D) / (2 * h), atol=1e-7)
    assert torch.allclose(end, x + (s - t)[:, None] * model(x, t, s).u)


@pytest.mark.parametrize("rule", losses.RULES)
def test_the_exact_map_has_zero_loss_under_every_rule(rule):
    x, t, s = points(32)
    out = losses.RULE_LOSSES[rule](EXACT, GMM.velocity, x, t, s)
    assert out.loss.item() < 1e-8


def test_adaptive_weight_scales_each_points_gradient_by_one_over_its_error():
    u = torch.tensor([[0.0, 0.0], [3.0, 0.0]], requires_grad=True)
    D = torch.tensor([0.0, 0.0], requires_grad=True)
    target = losses.Targets(torch.tensor([[0.1, 0.0], [0.0, 0.0]]), torch.tensor([0.0, 2.0]))
    d_weight, R, c = 0.5, 2.0, losses.ADAPTIVE_EPS
    err = torch.tensor([0.01, 9.0 + d_weight * 1.0])  # |du|^2 + d_weight (dD / R)^2 per point
    plain = losses.regress(f2.flowmap.FlowMapOutput(u, D), target, d_weight, R, "x")
    (g_plain,) = torch.autograd.grad(plain.loss, u)
    out = losses.regress(f2.flowmap.FlowMapOutput(u, D), target, d_weight, R, "x", adaptive_power=1.0)
    (g,) = torch.autograd.grad(out.loss, u)
    assert math.isclose(out.loss.item(), (err / (err + c)).mean().item(), rel_tol=1e-6)
    assert torch.allclose(g, g_plain / (err + c)[:, None])  # the weight is a stop-gradient constant per point
    assert out.metrics == plain.metrics  # metrics stay plain squared errors


@pytest.mark.parametrize("rule", ["meanflow", "lsd", "shortcut"])
def test_rules_run_under_bf16_autocast(rule):
    """What fit does on CUDA with bf16=True, checked on the CPU's bf16 autocast: the teacher's targets come back in
    float32 and the JVPs of meanflow and lsd run outside autocast, so tangents and primals share a dtype."""
    torch.manual_seed(0)
    teacher = unet.UNetVelocity(TINY_NET).requires_grad_(False)
    model = unet.UNetFlowMap.from_teacher(teacher, 64.0)
    x, t, s = torch.randn(4, 1, 8, 8), torch.rand(4), torch.rand(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = losses.RULE_LOSSES[rule](model, teacher, x, t, s, divergence="hutchinson", probes=1,
                                       generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_shortcut_targets_are_float32_under_bf16_autocast():
    """The two half jumps of the Shortcut target (D scaled by R) are computed in float32, autocast or not."""
    torch.manual_seed(0)
    model = unet.UNetFlowMap.from_teacher(unet.UNetVelocity(TINY_NET), 64.0)
    with torch.no_grad():
        model.div_head[-1].weight.normal_()  # a non-zero D head
    x, t, s = torch.randn(4, 1, 8, 8), torch.rand(4), torch.rand(4)
    plain = losses.shortcut_target(model, x, t, s)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = losses.shortcut_target(model, x, t, s)
    assert mixed.u.dtype == mixed.D.dtype == torch.float32
    torch.testing.assert_close(mixed, plain)
