"""guidance: maximum-likelihood self-guidance raises the one-step likelihood by Adam steps on the noise."""

import pytest
import torch

import f2d2mini as f2
from f2d2mini.flowmap import FlowMapConfig, JointFlowMap


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
    with pytest.raises(ValueError, match="lr must be > 0"):
        f2.guidance.self_guide(model, torch.zeros(2, 2), lr=0.0)


def tiny_unet_map(device="cpu"):
    """A fresh tiny U-Net flow map (random weights, its divergence head included), on ``device``."""
    from f2d2mini.images import unet

    torch.manual_seed(0)
    config = unet.UNetFlowMapConfig(widths=(8, 16), embed_dim=16, time_frequencies=4, groups=4, div_hidden=16)
    return unet.UNetFlowMap(config).to(device).eval()


def test_self_guidance_on_a_unet_map_is_adams_first_step_by_hand():
    """One Adam step from a fresh state moves each pixel by lr g / (|g| + eps), g = dJ/dx0 by autograd; J rises."""
    model = tiny_unet_map()
    x0 = f2.base.sample(6, (1, 8, 8), seed=1)
    x = x0.clone().requires_grad_(True)
    J = f2.base.log_prob(x, model.config.sigma0) + model(x, 0.0, 1.0).D  # [6]
    (grad,) = torch.autograd.grad(J.sum(), x)  # [6, 1, 8, 8]
    lr, eps = 0.01, 1e-8  # eps: torch.optim.Adam's default
    guided = f2.guidance.self_guide(model, x0, lr=lr)
    assert guided.shape == x0.shape and guided.dtype == x0.dtype
    torch.testing.assert_close(guided, x0 + lr * grad / (grad.abs() + eps), atol=1e-6, rtol=0)
    assert (grad.abs() > 1e-4).float().mean() > 0.9  # the sign step proper: almost every pixel moves by lr
    with torch.no_grad():
        before = f2.guidance.one_step_log_prob(model, x0)
        after = f2.guidance.one_step_log_prob(model, guided)
    assert (after > before).all()
    twice = f2.guidance.self_guide(model, x0, lr=lr, steps=2)
    assert not torch.allclose(twice, guided)  # a second Adam step moves the noise again


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_self_guidance_on_cuda_follows_the_input_and_matches_the_cpu():
    model, x0 = tiny_unet_map(), f2.base.sample(6, (1, 8, 8), seed=1)
    on_cpu = f2.guidance.self_guide(model, x0, lr=0.01)
    on_gpu = f2.guidance.self_guide(tiny_unet_map("cuda"), x0.cuda(), lr=0.01)
    assert on_gpu.device.type == "cuda"
    same = (on_gpu.cpu() - on_cpu).abs() < 1e-5  # a pixel whose gradient is ~0 may flip sign under TF32
    assert same.float().mean() > 0.99
