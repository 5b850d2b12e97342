"""images.unet: the U-Net's call contract (that of the MLP), one image independent of the others, the warm start
from a teacher, and checkpoint round trips."""

import pytest
import torch
from helpers import TINY_NET

import f2d2mini as f2
from f2d2mini import flowmap, ode
from f2d2mini.images import unet

torch.set_num_threads(1)


def test_unet_call_contract_matches_the_mlp():
    torch.manual_seed(0)
    v = unet.UNetVelocity(TINY_NET)
    x = torch.randn(5, 1, 8, 8)
    out = v(x, 0.3)
    assert out.shape == x.shape and torch.allclose(out, v(x, torch.full((5,), 0.3)))
    fm = unet.UNetFlowMap(unet.UNetFlowMapConfig(**vars(TINY_NET)))
    res = fm(x, 0.2, torch.full((5,), 0.9))
    assert isinstance(res, flowmap.FlowMapOutput) and res.u.shape == x.shape and res.D.shape == (5,)
    assert torch.allclose(res.D, fm(x, torch.full((5,), 0.2), 0.9).D)
    with pytest.raises(ValueError, match=r"shape \[batch, 1, 8, 8\], got \(5, 1, 6, 6\)"):
        v(torch.randn(5, 1, 6, 6), 0.3)
    with pytest.raises(ValueError, match=r"t must be a float or a tensor of shape \[5\]"):
        v(x, torch.rand(4))
    with pytest.raises(ValueError, match="groups 4 must divide every width"):
        unet.UNetConfig(widths=(6, 8), groups=4)


def test_samples_are_independent_in_a_batch():
    """GroupNorm, not BatchNorm: one image's output does not depend on the others (divergences need this)."""
    torch.manual_seed(0)
    v = unet.UNetVelocity(TINY_NET)
    x = torch.randn(4, 1, 8, 8)
    assert torch.allclose(v(x, 0.5)[:1], v(x[:1], 0.5), atol=1e-6)


def test_warm_start_copies_the_teacher_and_euler():
    """From the teacher: u(x, t, s) = v(x, t) and D = 0, so K jumps are exactly K Euler steps of the teacher."""
    torch.manual_seed(0)
    v = unet.UNetVelocity(TINY_NET).eval()
    fm = unet.UNetFlowMap.from_teacher(v, div_scale=64.0).eval()
    x = torch.randn(3, 1, 8, 8)
    out = fm(x, 0.25, 0.75)
    assert torch.allclose(out.u, v(x, 0.25), atol=1e-6) and torch.all(out.D == 0)
    with torch.no_grad():
        assert torch.allclose(fm.sample(x, 4), ode.sample(v, x, 4, "euler"), atol=1e-5)


@pytest.mark.parametrize("cls", [unet.UNetVelocity, unet.UNetFlowMap])
def test_checkpoint_round_trip(tmp_path, cls):
    torch.manual_seed(0)
    config = TINY_NET if cls is unet.UNetVelocity else unet.UNetFlowMapConfig(**vars(TINY_NET), div_scale=10.0)
    model = cls(config).eval()
    f2.save(model, tmp_path / "m.pt", {"dataset": "digits"})
    back = f2.load(tmp_path / "m.pt")
    assert type(back) is cls and back.config == model.config and back.metadata["dataset"] == "digits"
    x = torch.randn(2, 1, 8, 8)
    args = (x, 0.4) if cls is unet.UNetVelocity else (x, 0.4, 0.8)
    assert torch.equal(torch.as_tensor(back(*args)[0]), torch.as_tensor(model(*args)[0]))
