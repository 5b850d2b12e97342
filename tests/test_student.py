"""The front door f2d2mini.distill: any velocity, data as a tensor, the map chosen from the data, errors before
any training step."""

import math

import pytest
import torch
from torch import nn

import f2d2mini as f2
from f2d2mini import adapters, student

D = 5  # a dimension that is neither the 2-D toys' nor an image's
MEANS = [[1.5] * D, [-1.0] + [0.5] * (D - 1)]
COVS = [torch.diag(torch.linspace(0.1, 0.4, D)).tolist()] * 2
GMM5 = f2.toy.GaussianMixture(MEANS, COVS, [1.0, 1.5])
NET = f2.nets.MLPConfig(dim=D, width=64, depth=3, time_frequencies=6)


def tiny(rule="lsd", **changes):
    settings = dict(steps=4, warm_steps=2, batch_size=16, coverage_fraction=0.0, progress=False, log_every=2)
    return f2.distillation.distill_config(rule, **{**settings, **changes})


class OwnMLP(nn.Module):
    """A velocity written without f2d2mini: a forward(x, t) of its own."""

    def __init__(self, d=2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d + 1, 32), nn.SiLU(), nn.Linear(32, d))

    def forward(self, x, t):
        return self.net(torch.cat([x, t[:, None]], 1))


def test_tensor_batches_are_shuffled_epochs_that_a_resumed_run_redraws():
    data = torch.arange(10.0)[:, None]
    draw = student.tensor_batches(data, 4, 1.0, seed=3)
    gen = torch.Generator().manual_seed(0)
    rows = torch.cat([draw(gen, step).x1[:, 0] for step in range(5)])  # 20 rows: two whole epochs
    assert sorted(rows[:10].tolist()) == list(range(10)) and sorted(rows[10:].tolist()) == list(range(10))
    assert rows[:10].tolist() != list(range(10))  # shuffled
    again = student.tensor_batches(data, 4, 1.0, seed=3)
    torch.testing.assert_close(again(torch.Generator(), 3).x1, draw(torch.Generator(), 3).x1)  # by step alone


def test_the_map_follows_the_data_and_the_teacher():
    assert student.default_net((7,), 0.5) == f2.nets.MLPConfig(dim=7, space_features=f2.nets.SPACE_FEATURES, sigma0=0.5)
    assert student.default_net((3, 8, 8), 1.0).channels == 3
    with pytest.raises(ValueError, match=r"shape \(4, 6\): f2d2mini's maps take vectors"):
        student.default_net((4, 6), 1.0)
    teacher = f2.nets.VelocityMLP(f2.nets.MLPConfig(width=8, depth=1, time_frequencies=2))
    warm = student.student_map(teacher, (2,), f2.distillation.DistillConfig(div_scale=2.0))
    assert warm.config.width == 8  # the teacher's own architecture, warm-started
    fresh = student.student_map(OwnMLP(D), (D,), f2.distillation.DistillConfig(div_scale=5.0))
    assert fresh.config.dim == D and fresh.config.div_scale == 5.0


def test_a_plain_module_and_a_flow_matching_wrapper_distil_to_the_same_map():
    fm = pytest.importorskip("flow_matching.utils", reason="flow_matching (the peers extra) is not installed")
    g8 = f2.toy.density("gaussians8")

    class Own(nn.Module):  # flow_matching's models take keywords x=, t=; this one takes both ways
        def forward(self, x, t):
            return g8.velocity(x, t)

    data = g8.sample(64, seed=0)
    plain = f2.distill(Own(), data, "shortcut", tiny("shortcut"), seed=1)
    wrapped = f2.distill(adapters.flow_matching(fm.ModelWrapper(Own())), data.double(), "shortcut",
                         tiny("shortcut"), seed=1)
    for a, b in zip(plain.parameters(), wrapped.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert plain.metadata["rule"] == "shortcut" and plain.config.div_scale == 2.0  # R = d by default


def test_distilling_a_closed_form_teacher_in_five_dimensions():
    """A 5-D mixture's exact velocity, distilled from a data tensor: K = 4 likelihoods near the exact density."""
    torch.set_num_threads(1)
    config = f2.distillation.distill_config("lsd", steps=400, warm_steps=100, batch_size=128, lr=2e-3, warmup=20,
                                            coverage_fraction=0.0, progress=False, net=NET)
    model = f2.distill(GMM5.velocity, GMM5.sample(20_000, seed=1), "lsd", config, seed=0)
    x = GMM5.sample(1000, seed=4)
    err = (model.log_prob(x, steps=4) - GMM5.log_prob(x)).abs().mean().item()
    base_err = (f2.base.log_prob(x) - GMM5.log_prob(x)).abs().mean().item()  # the identity map's error
    assert err < 1.0 and err < base_err / 3, (err, base_err)  # loose: 400 steps of a fresh 64-wide map
    assert math.isfinite(model.history.loss[-1]) and model.config.div_scale == D


@pytest.mark.parametrize(("teacher", "data", "error", "message"), [
    (GMM5.velocity, torch.randn(100, 3), adapters.TeacherError, r"x of shape \(48, 3\) .* failed"),
    (OwnMLP(D), torch.full((100, D), math.nan), ValueError, "data has 500 non-finite entries"),
    (OwnMLP(D), torch.zeros(0, D), ValueError, "data has 0 rows"),
    (OwnMLP(D), [[0.0] * D], TypeError, "data must be a tensor"),
    (lambda x, t: torch.from_numpy(GMM5.velocity(x, t).numpy()), GMM5.sample(100, seed=0), adapters.TeacherError,
     "differentiable in x with torch.func"),
    (f2.nets.VelocityMLP(f2.nets.MLPConfig(width=8, depth=1)), torch.randn(100, D), ValueError,
     r"the data's points have shape \(5,\) but the map takes points of shape \(2,\)"),
])
def test_bad_input_is_named_before_any_training_step(monkeypatch, teacher, data, error, message):
    monkeypatch.setattr(student, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(error, match=message):
        f2.distill(teacher, data, "lsd", tiny(batch_size=16))


def test_a_sigma0_mismatch_is_named_before_training(monkeypatch):
    monkeypatch.setattr(student, "fit", lambda *a, **k: pytest.fail("training started"))
    mix = f2.toy.GaussianMixture(MEANS, COVS, [1.0, 1.0], sigma0=0.8)
    with pytest.raises(ValueError, match=r"teacher's base sigma0 is 0.8 but config.net.sigma0 is 1.0"):
        f2.distill(mix.velocity, mix.sample(50, seed=0), "lsd", tiny(net=NET))


def test_square_images_get_a_unet_map():
    teacher = adapters.velocity(lambda x, t: (t.view(-1, 1, 1, 1) - (1 - t.view(-1, 1, 1, 1))) / (
        (1 - t.view(-1, 1, 1, 1)) ** 2 + t.view(-1, 1, 1, 1) ** 2) * x)  # the path from N(0, I) to N(0, I)
    images = torch.randn(32, 1, 8, 8)
    model = f2.distill(teacher, images, "shortcut", tiny("shortcut", divergence="hutchinson", batch_size=8))
    assert isinstance(model, f2.images.UNetFlowMap) and model.config.div_scale == 64
    assert model.sample(2, steps=1, seed=0).shape == (2, 1, 8, 8)
