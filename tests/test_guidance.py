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
